package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
)

func connMode(reuse bool) string {
	if reuse {
		return "reused connections"
	}
	return "a new connection per message"
}

func mib(kib int64) float64 { return float64(kib) / 1024 }

// printResult writes one run for a person.
func printResult(w io.Writer, r result) {
	fmt.Fprintf(w, "%s (%s): %d messages of %d bytes, concurrency %d, %s\n",
		r.Name, r.Target, r.Messages, r.Size, r.Concurrency, connMode(r.Reuse))
	if r.Messages > 0 {
		printLoad(w, r)
	}
	if r.Memory.Processes > 0 {
		fmt.Fprintf(w, "  peak memory     PSS %.1f MiB, RSS %.1f MiB (%d processes at most)\n",
			mib(r.Memory.PSSKiB), mib(r.Memory.RSSKiB), r.Memory.Processes)
	}
	if r.Messages > 0 && (r.ServerCPU > 0 || r.BenchCPU > 0) {
		fmt.Fprintf(w, "  CPU             server %.2f s (%.2f ms per message), this tool %.2f s\n",
			r.ServerCPU, perMessageMs(r.ServerCPU, r.Delivered), r.BenchCPU)
	}
	if c := r.Ceiling; c != nil {
		fmt.Fprintf(w, "  bench ceiling   %.1f msg/s at one hop (this tool to its own sink, %d messages; %.2f ms of its CPU per message)",
			c.Rate, c.Messages, c.CPUms)
		if c.Error != "" {
			fmt.Fprintf(w, " (errors: %s)", c.Error)
		}
		fmt.Fprintln(w)
	}
	if i := r.Idle; i != nil {
		fmt.Fprintf(w, "  idle            %d of %d connections held", i.Held, i.Requested)
		if i.Failed > 0 {
			fmt.Fprintf(w, " (%d failed: %s)", i.Failed, i.FirstError)
		}
		if i.Holding.Processes > 0 {
			fmt.Fprintf(w, ": RSS %.1f MiB (%.1f before), PSS %.1f MiB, %.1f KiB per connection",
				mib(i.Holding.RSSKiB), mib(i.Before.RSSKiB), mib(i.Holding.PSSKiB), i.PerConnKiB)
		}
		fmt.Fprintln(w)
	}
}

// printLoad writes the figures of the load part of a run.
func printLoad(w io.Writer, r result) {
	fmt.Fprintf(w, "  accepted        %d, refused or failed %d\n", r.Accepted, r.Failed)
	keys := make([]string, 0, len(r.Errors))
	for k := range r.Errors {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(a, b int) bool {
		if r.Errors[keys[a]] != r.Errors[keys[b]] {
			return r.Errors[keys[a]] > r.Errors[keys[b]]
		}
		return keys[a] < keys[b]
	})
	for i, k := range keys {
		if i == 5 {
			fmt.Fprintf(w, "                  ... %d more kinds\n", len(keys)-5)
			break
		}
		fmt.Fprintf(w, "                  %6d x %s\n", r.Errors[k], k)
	}
	fmt.Fprintf(w, "  ingest          %.1f msg/s (%.2f s)\n", r.IngestRate, r.IngestSecs)
	fmt.Fprintf(w, "  end-to-end      %.1f msg/s (%.2f s): delivered %d, missing %d, duplicates %d, not rewritten %d\n",
		r.E2ERate, r.E2ESecs, r.Delivered, r.Missing, r.Duplicates, r.Unrewritten)
	fmt.Fprintf(w, "  accept latency  p50 %.1f ms, p99 %.1f ms, max %.1f ms\n", r.P50Ms, r.P99Ms, r.MaxMs)
}

func perMessageMs(secs float64, n int) float64 {
	if n == 0 {
		return 0
	}
	return secs * 1000 / float64(n)
}

func readResult(path string) (result, error) {
	var r result
	data, err := os.ReadFile(path)
	if err != nil {
		return r, err
	}
	if err := json.Unmarshal(data, &r); err != nil {
		return r, fmt.Errorf("%s: %v", path, err)
	}
	return r, nil
}

// runCompare prints A beside B with the ratio A / B of each figure. A
// side given as several runs, comma-separated, is their median figure by
// figure: runs of the two sides taken in turns, each side's median, are
// what a loaded machine's noise leaves comparable.
func runCompare(stdout, stderr io.Writer, args []string) int {
	if len(args) != 2 {
		fmt.Fprintln(stderr, "usage: sekisho-bench compare A.json[,A2.json...] B.json[,B2.json...]")
		return 2
	}
	var sides [2]result
	for i, arg := range args {
		var runs []result
		for _, p := range strings.Split(arg, ",") {
			r, err := readResult(p)
			if err != nil {
				fmt.Fprintln(stderr, "sekisho-bench:", err)
				return 1
			}
			runs = append(runs, r)
		}
		sides[i] = medianResult(runs)
	}
	printCompare(stdout, sides[0], sides[1])
	return 0
}

// medianResult is one run whose figures are the medians of runs' (which
// ran the same load); errors are summed. One run is itself.
func medianResult(runs []result) result {
	if len(runs) == 1 {
		return runs[0]
	}
	median := func(f func(r result) float64) float64 {
		v := make([]float64, len(runs))
		for i, r := range runs {
			v[i] = f(r)
		}
		sort.Float64s(v)
		if len(v)%2 == 1 {
			return v[len(v)/2]
		}
		return (v[len(v)/2-1] + v[len(v)/2]) / 2
	}
	m := runs[0]
	m.Name = fmt.Sprintf("%s (median of %d)", m.Name, len(runs))
	m.E2ERate = median(func(r result) float64 { return r.E2ERate })
	m.IngestRate = median(func(r result) float64 { return r.IngestRate })
	m.P50Ms = median(func(r result) float64 { return r.P50Ms })
	m.P99Ms = median(func(r result) float64 { return r.P99Ms })
	m.Memory.PSSKiB = int64(median(func(r result) float64 { return float64(r.Memory.PSSKiB) }))
	m.Memory.RSSKiB = int64(median(func(r result) float64 { return float64(r.Memory.RSSKiB) }))
	// Per message, then back to this run's count: printCompare divides.
	m.ServerCPU = median(func(r result) float64 { return perMessageMs(r.ServerCPU, r.Delivered) }) * float64(m.Delivered) / 1000
	if m.Ceiling != nil {
		c := *m.Ceiling
		c.Rate = median(func(r result) float64 {
			if r.Ceiling == nil {
				return 0
			}
			return r.Ceiling.Rate
		})
		m.Ceiling = &c
	}
	m.Failed, m.Missing = 0, 0
	for _, r := range runs {
		m.Failed += r.Failed
		m.Missing += r.Missing
	}
	return m
}

func printCompare(w io.Writer, a, b result) {
	fmt.Fprintf(w, "%s vs %s: %d messages of %d bytes, concurrency %d, %s\n",
		a.Name, b.Name, a.Messages, a.Size, a.Concurrency, connMode(a.Reuse))
	if a.Messages != b.Messages || a.Size != b.Size || a.Concurrency != b.Concurrency || a.Reuse != b.Reuse {
		fmt.Fprintf(w, "  (warning: %s ran %d x %d bytes, concurrency %d, %s)\n",
			b.Name, b.Messages, b.Size, b.Concurrency, connMode(b.Reuse))
	}
	cw := max(12, len(a.Name), len(b.Name)) // a column's width
	fmt.Fprintf(w, "  %-26s %*s %*s %10s\n", "", cw, a.Name, cw, b.Name, "ratio")
	row := func(label string, x, y float64, better string) {
		ratio := "-"
		if y != 0 {
			ratio = fmt.Sprintf("%.2fx", x/y)
		}
		fmt.Fprintf(w, "  %-26s %*.2f %*.2f %10s  (%s is better)\n", label, cw, x, cw, y, ratio, better)
	}
	row("end-to-end msg/s", a.E2ERate, b.E2ERate, "higher")
	row("ingest msg/s", a.IngestRate, b.IngestRate, "higher")
	row("accept latency p50 ms", a.P50Ms, b.P50Ms, "lower")
	row("accept latency p99 ms", a.P99Ms, b.P99Ms, "lower")
	if a.Memory.Processes > 0 && b.Memory.Processes > 0 {
		row("peak PSS MiB", mib(a.Memory.PSSKiB), mib(b.Memory.PSSKiB), "lower")
		row("peak RSS MiB (sum)", mib(a.Memory.RSSKiB), mib(b.Memory.RSSKiB), "lower")
		row("server CPU ms per message", perMessageMs(a.ServerCPU, a.Delivered), perMessageMs(b.ServerCPU, b.Delivered), "lower")
	}
	if a.Ceiling != nil && b.Ceiling != nil {
		fmt.Fprintf(w, "  %-26s %*.2f %*.2f %10s  (the tool's own one-hop limit in each run)\n",
			"bench ceiling msg/s", cw, a.Ceiling.Rate, cw, b.Ceiling.Rate, "")
	}
	fmt.Fprintf(w, "  %-26s %*d %*d\n", "errors", cw, a.Failed+a.Missing, cw, b.Failed+b.Missing)
}

// runReport prints the runs as one Markdown table.
func runReport(stdout, stderr io.Writer, args []string) int {
	if len(args) == 0 {
		fmt.Fprintln(stderr, "usage: sekisho-bench report RUN.json...")
		return 2
	}
	var runs []result
	for _, p := range args {
		r, err := readResult(p)
		if err != nil {
			fmt.Fprintln(stderr, "sekisho-bench:", err)
			return 1
		}
		runs = append(runs, r)
	}
	printReport(stdout, runs)
	return 0
}

func printReport(w io.Writer, runs []result) {
	loads := 0
	for _, r := range runs {
		if r.Messages > 0 {
			loads++
		}
	}
	if loads > 0 {
		printLoadTable(w, runs)
	}
	var idle []string
	for _, r := range runs {
		if i := r.Idle; i != nil {
			idle = append(idle, fmt.Sprintf("| %s | %d of %d | %.1f | %.1f | %.1f |",
				r.Name, i.Held, i.Requested, mib(i.Holding.RSSKiB), mib(i.Holding.PSSKiB), i.PerConnKiB))
		}
	}
	if len(idle) > 0 {
		if loads > 0 {
			fmt.Fprintln(w)
		}
		fmt.Fprintln(w, "| server | idle connections held | RSS MiB | PSS MiB | KiB per connection |")
		fmt.Fprintln(w, "|---|--:|--:|--:|--:|")
		fmt.Fprintln(w, strings.Join(idle, "\n"))
	}
}

func printLoadTable(w io.Writer, runs []result) {
	fmt.Fprintln(w, "| server | size | conc. | connections | messages | end-to-end msg/s | ingest msg/s | p50 ms | p99 ms | peak PSS MiB | peak RSS MiB | server CPU ms/msg | errors | bench ceiling msg/s |")
	fmt.Fprintln(w, "|---|--:|--:|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|")
	for _, r := range runs {
		if r.Messages == 0 {
			continue
		}
		mode := "new"
		if r.Reuse {
			mode = "reused"
		}
		ceil := "-"
		if r.Ceiling != nil && r.Ceiling.Rate > 0 {
			ceil = fmt.Sprintf("%.0f", r.Ceiling.Rate)
		}
		fmt.Fprintf(w, "| %s | %s | %d | %s | %d | %.0f | %.0f | %.1f | %.1f | %s | %s | %.2f | %d | %s |\n",
			r.Name, sizeCell(r.Size), r.Concurrency, mode, r.Messages, r.E2ERate, r.IngestRate, r.P50Ms, r.P99Ms,
			memCell(r.Memory.PSSKiB, r.Memory.Processes), memCell(r.Memory.RSSKiB, r.Memory.Processes),
			perMessageMs(r.ServerCPU, r.Delivered), r.Failed+r.Missing+r.Duplicates+r.Unrewritten, ceil)
	}
}

// sizeCell writes a message size as a reader of the table says it.
func sizeCell(b int) string {
	if b >= 1024 && b%1024 == 0 {
		return fmt.Sprintf("%d KiB", b/1024)
	}
	return fmt.Sprintf("%d B", b)
}

func memCell(kib int64, procs int) string {
	if procs == 0 {
		return "-"
	}
	return fmt.Sprintf("%.1f", mib(kib))
}
