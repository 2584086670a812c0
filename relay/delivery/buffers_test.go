package delivery

import (
	"context"
	"testing"
)

// An idle pooled connection holds no transaction buffers: they go back
// to the pool with the connection, so idle connections cost no 64 KiB
// buffers each. With DATA and with BDAT.
func TestIdleConnectionsHoldNoBuffers(t *testing.T) {
	for _, chunking := range []bool{false, true} {
		exts := []string{"PIPELINING"}
		if chunking {
			exts = append(exts, "CHUNKING")
		}
		r := newRawSink(t, "", exts...)
		c := testClient(t, nil)
		m := message2KiB()
		for range 3 {
			if res, err := c.Deliver(context.Background(), plainTarget(r.addr), m); err != nil || !res[0].Delivered {
				t.Fatalf("%+v %v", res, err)
			}
		}
		c.mu.Lock()
		idle := 0
		for _, p := range c.pools {
			p.mu.Lock()
			for _, cn := range p.idle {
				idle++
				if cn.bufs != nil {
					t.Errorf("chunking %v: an idle connection holds its transaction buffers", chunking)
				}
			}
			p.mu.Unlock()
		}
		c.mu.Unlock()
		if idle == 0 {
			t.Errorf("chunking %v: no idle connection to look at", chunking)
		}
	}
}
