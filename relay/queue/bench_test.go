package queue

import (
	"bytes"
	"fmt"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// BenchmarkEnqueue measures durable commits per second: each Enqueue
// returns only after its message is fdatasynced, with 1, 10 and 50
// concurrent writers sharing group commits, for 2 KiB and 100 KiB
// messages; with the process's CPU time per message. The target is 5,000/s
// at 2 KiB on a 2-core ext4 machine.
func BenchmarkEnqueue(b *testing.B) {
	for _, size := range []int{2048, 100 << 10} {
		for _, writers := range []int{1, 10, 50} {
			b.Run(fmt.Sprintf("size=%d/writers=%d", size, writers), func(b *testing.B) {
				cfg := DefaultConfig()
				cfg.Dir = b.TempDir()
				cfg.MaxMessages = 1 << 30
				cfg.MaxBytes = 1 << 40
				q := openTest(b, cfg)
				data := msgData(0, size)
				env := testEnvelope("someone@city.example.lg.jp")
				var next atomic.Int64
				var wg sync.WaitGroup
				b.SetBytes(int64(len(data)))
				b.ResetTimer()
				start, cpu := time.Now(), processCPU()
				for range writers {
					wg.Add(1)
					go func() {
						defer wg.Done()
						for next.Add(1) <= int64(b.N) {
							if _, err := q.Enqueue(env, bytes.NewReader(data)); err != nil {
								b.Error(err)
								return
							}
						}
					}()
				}
				wg.Wait()
				b.StopTimer()
				b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "msgs/s")
				b.ReportMetric(float64((processCPU()-cpu).Microseconds())/float64(b.N), "cpu-µs/msg")
			})
		}
	}
}

// processCPU is the user and system time this process has used.
func processCPU() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkDeliver measures the delivery side's bookkeeping: claim a
// message, read it, mark its recipient delivered (durable), unclaim.
func BenchmarkDeliver(b *testing.B) {
	cfg := DefaultConfig()
	cfg.Dir = b.TempDir()
	q := openTest(b, cfg)
	data := msgData(0, 2048)
	env := testEnvelope("someone@city.example.lg.jp")
	for range b.N {
		if _, err := q.Enqueue(env, bytes.NewReader(data)); err != nil {
			b.Fatal(err)
		}
	}
	const workers = 10
	var wg sync.WaitGroup
	b.ResetTimer()
	start := time.Now()
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := make([]byte, 4096)
			for {
				ms := q.Due(time.Now(), 1)
				if len(ms) == 0 {
					return
				}
				rc, err := q.Open(ms[0].ID)
				if err != nil {
					b.Error(err)
					return
				}
				for {
					if _, err := rc.Read(buf); err != nil {
						break
					}
				}
				rc.Close()
				if err := q.MarkDelivered(ms[0].ID, 0); err != nil {
					b.Error(err)
				}
				q.Unclaim(ms[0].ID)
			}
		}()
	}
	wg.Wait()
	b.StopTimer()
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "msgs/s")
}
