// Package ops owns what the gateway tells its operators about itself: the
// Prometheus series and the /metrics and /healthz endpoint. Where log
// records go (logsink) and the live protocol trace (trace) live beneath it.
package ops

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// MetricsConfig is relay.metrics: the Prometheus endpoint; an empty
// address disables it.
type MetricsConfig struct {
	Address string `koanf:"address"`
}

// Validate reports a malformed address, keyed relative to relay.metrics.
func (c MetricsConfig) Validate() error {
	if c.Address == "" {
		return nil
	}
	if _, _, err := net.SplitHostPort(c.Address); err != nil {
		return fmt.Errorf("address: %v", err)
	}
	return nil
}

// Metrics are the gateway's Prometheus series. Labels are bounded: rule
// names come from the configuration, reasons from a fixed list, next hops
// from the routing table; addresses never become labels.
type Metrics struct {
	reg         *prometheus.Registry
	Connections *prometheus.CounterVec // listener, outcome
	Sessions    *prometheus.GaugeVec   // listener
	Commands    *prometheus.CounterVec // stage, verdict, reason
	Messages    *prometheus.CounterVec // outcome, reason
	Rewrites    *prometheus.CounterVec // rule
	Attempts    *prometheus.CounterVec // hop, result
	DSNs        *prometheus.CounterVec // action
	QueueSize   prometheus.Gauge
	QueueOldest prometheus.Gauge
	// DeliveryPaused is 1 while the runner waits for the spool's disk;
	// UnrecordedResults counts messages whose outcome waits in memory.
	DeliveryPaused    prometheus.Gauge
	UnrecordedResults prometheus.Gauge
	AuthResults       *prometheus.CounterVec // mechanism, result
}

// NewMetrics registers every series in a fresh registry.
func NewMetrics() *Metrics {
	m := &Metrics{reg: prometheus.NewRegistry()}
	m.Connections = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "sekisho_connections_total", Help: "SMTP connections by listener and outcome (accepted, refused_limit, refused_rate)."},
		[]string{"listener", "outcome"})
	m.Sessions = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "sekisho_connections_open", Help: "Open SMTP connections by listener."}, []string{"listener"})
	m.Commands = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "sekisho_commands_total", Help: "MAIL, RCPT and DATA verdicts by stage, verdict and reason."},
		[]string{"stage", "verdict", "reason"})
	m.Messages = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "sekisho_messages_total", Help: "Messages accepted or refused at DATA, by reason."},
		[]string{"outcome", "reason"})
	m.Rewrites = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "sekisho_rewrites_total", Help: "Address rewrites by rule name."}, []string{"rule"})
	m.Attempts = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "sekisho_delivery_attempts_total", Help: "Delivery attempts per recipient by next hop and result (delivered, deferred, failed)."},
		[]string{"hop", "result"})
	m.DSNs = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "sekisho_dsn_total", Help: "Delivery status notifications queued, by action (failed, delayed)."}, []string{"action"})
	m.QueueSize = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "sekisho_queue_messages", Help: "Messages in the queue."})
	m.QueueOldest = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "sekisho_queue_oldest_seconds", Help: "Age of the oldest message in the queue."})
	m.DeliveryPaused = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "sekisho_delivery_paused", Help: "1 while delivery is paused because the spool cannot record results."})
	m.UnrecordedResults = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "sekisho_delivery_unrecorded_messages", Help: "Messages whose delivery outcome waits in memory until the spool can record it."})
	m.AuthResults = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "sekisho_auth_total", Help: "SMTP AUTH attempts by mechanism and result."}, []string{"mechanism", "result"})
	m.reg.MustRegister(m.Connections, m.Sessions, m.Commands, m.Messages, m.Rewrites, m.Attempts, m.DSNs,
		m.QueueSize, m.QueueOldest, m.DeliveryPaused, m.UnrecordedResults, m.AuthResults,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// Registry exposes the registry, for tests.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// ServeMetrics serves /metrics and /healthz on addr until ctx ends. healthy
// reports whether the gateway can take mail (listeners up, queue
// writable).
func ServeMetrics(ctx context.Context, addr string, m *Metrics, healthy func() error) error {
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) {
		if err := healthy(); err != nil {
			http.Error(w, "unhealthy: "+err.Error(), http.StatusServiceUnavailable)
			return
		}
		w.Write([]byte("ok\n"))
	})
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		srv.Shutdown(sctx)
	}()
	go srv.Serve(l)
	return nil
}
