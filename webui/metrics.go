package webui

import (
	"context"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/racklift/racklift/provision/events"
)

// metricsCollector reads the event store on every scrape, so the numbers
// are always those of the store (and survive a restart) and nothing is
// counted twice. It uses its own registry, never the global one.
type metricsCollector struct {
	api       *API
	nodes     *prometheus.Desc
	phaseSecs *prometheus.Desc
	attempts  *prometheus.Desc
	events    *prometheus.Desc
	planNodes *prometheus.Desc
	build     *prometheus.Desc
	up        *prometheus.Desc
}

func newMetricsCollector(a *API) *metricsCollector {
	return &metricsCollector{
		api:       a,
		nodes:     prometheus.NewDesc("racklift_nodes", "Nodes per current install phase.", []string{"phase"}, nil),
		phaseSecs: prometheus.NewDesc("racklift_phase_seconds_total", "Time all nodes spent in each phase, BMC and BIOS work included.", []string{"phase"}, nil),
		attempts:  prometheus.NewDesc("racklift_install_attempts_total", "Install attempts started, over all nodes.", nil, nil),
		events:    prometheus.NewDesc("racklift_events_total", "Events recorded (the newest event ID).", nil, nil),
		planNodes: prometheus.NewDesc("racklift_plan_nodes", "Nodes in the loaded plan.", nil, nil),
		build:     prometheus.NewDesc("racklift_build_info", "racklift version.", []string{"version"}, nil),
		up:        prometheus.NewDesc("racklift_store_up", "1 if the event store could be read for this scrape.", nil, nil),
	}
}

// Describe implements prometheus.Collector.
func (m *metricsCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{m.nodes, m.phaseSecs, m.attempts, m.events, m.planNodes, m.build, m.up} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (m *metricsCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	ch <- prometheus.MustNewConstMetric(m.build, prometheus.GaugeValue, 1, m.api.Version)
	ch <- prometheus.MustNewConstMetric(m.planNodes, prometheus.GaugeValue, float64(len(m.api.Plan.Nodes)))
	states, err := m.api.Store.Nodes(ctx)
	last, err2 := m.api.Store.LastID(ctx)
	if err != nil || err2 != nil {
		m.api.Log.Warn("metrics: read store", "err", err, "err2", err2)
		ch <- prometheus.MustNewConstMetric(m.up, prometheus.GaugeValue, 0)
		return
	}
	ch <- prometheus.MustNewConstMetric(m.up, prometheus.GaugeValue, 1)
	ch <- prometheus.MustNewConstMetric(m.events, prometheus.CounterValue, float64(last))
	byPhase := map[string]int{}
	secs := map[string]float64{}
	attempts := 0
	known := map[string]bool{}
	for _, s := range states {
		known[s.Name] = true
		ph := string(s.Phase)
		if s.Phase == events.PhaseNone {
			ph = string(events.PhasePlanned)
		}
		byPhase[ph]++
		attempts += s.Attempts
		for p, d := range s.Durations {
			secs[string(p)] += d.Seconds()
		}
	}
	for _, n := range m.api.Plan.Nodes {
		if !known[n.Name] {
			byPhase[string(events.PhasePlanned)]++
		}
	}
	for ph, n := range byPhase {
		ch <- prometheus.MustNewConstMetric(m.nodes, prometheus.GaugeValue, float64(n), ph)
	}
	for ph, s := range secs {
		ch <- prometheus.MustNewConstMetric(m.phaseSecs, prometheus.CounterValue, s, ph)
	}
	ch <- prometheus.MustNewConstMetric(m.attempts, prometheus.CounterValue, float64(attempts))
}

// metricsHandler serves /metrics in the Prometheus text format.
func (a *API) metricsHandler() http.Handler {
	reg := prometheus.NewRegistry()
	reg.MustRegister(newMetricsCollector(a))
	return promhttp.HandlerFor(reg, promhttp.HandlerOpts{ErrorLog: nil, Timeout: 10 * time.Second})
}
