// Package metrics serves secbot's Prometheus metrics and health check,
// read from the store and the bot at scrape time.
package metrics

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/rs/zerolog"

	"github.com/enarx/secbot/store"
)

// Health is what the bot tells of its connection to the homeserver.
type Health interface {
	Healthy() bool
	LastSync() time.Time
}

// TeamRoom is, if the health source has it, whether the team room takes
// secbot's posts.
type TeamRoom interface {
	TeamRoomWaiting() (waiting bool, refusals int64)
}

// Chats is, if the health source has it, the connection of each chat
// platform secbot is on: /healthz is degraded while any is down and names
// those, and /metrics has secbot_chat_up for each.
type Chats interface {
	ChatHealth() []ChatHealth
}

// ChatHealth is one chat platform's connection.
type ChatHealth struct {
	Platform string // "matrix", "rocketchat"
	Up       bool
	// Down is what is wrong while it is not Up ("not syncing with the
	// homeserver").
	Down string
	// Last is its last success (Matrix: a sync; Rocket.Chat: the catch-up
	// after a connect); zero before the first.
	Last time.Time
}

// GitHubRate is what secbot knows of its GitHub rate limit.
type GitHubRate interface {
	RequestsLastHour() int
	Remaining() (remaining, limit int, reset time.Time, known bool)
}

// Office is the instance's part in the election of the active instance
// (store.Leader).
type Office interface {
	Role() string
	Active() bool
	Epoch() int64
	Takeovers() int64
}

var (
	activeDesc      = prometheus.NewDesc("secbot_active", "1 on the active instance; 0 on a standby (or one that lost its office and stops).", nil, nil)
	epochDesc       = prometheus.NewDesc("secbot_epoch", "The epoch of the active instance: its own once active, the one in force on a standby.", nil, nil)
	takeoversDesc   = prometheus.NewDesc("secbot_takeovers_total", "Offices taken on this database by an instance that had been standing by.", nil, nil)
	ghRequestsDesc  = prometheus.NewDesc("secbot_github_requests_last_hour", "Requests made to GitHub in the last hour (conditional ones answered 304 included).", nil, nil)
	ghRateLeftDesc  = prometheus.NewDesc("secbot_github_rate_limit_remaining", "GitHub's rate limit left, as its last answer said (X-RateLimit-Remaining).", nil, nil)
	casesDesc       = prometheus.NewDesc("secbot_cases", "Cases by stage.", []string{"stage"}, nil)
	deadlinesDesc   = prometheus.NewDesc("secbot_deadlines", "Deadlines by outcome: kept (met in time) or missed (met late or overdue).", []string{"outcome"}, nil)
	escalationsDesc = prometheus.NewDesc("secbot_escalations_total", "Escalation steps sent.", nil, nil)
	refusedDesc     = prometheus.NewDesc("secbot_refused_total", "Commands and invites refused (audited).", nil, nil)
	outboxDesc      = prometheus.NewDesc("secbot_outbox_pending", "Side effects recorded and not yet made.", nil, nil)
	outboxAgeDesc   = prometheus.NewDesc("secbot_outbox_oldest_seconds", "Age of the oldest pending side effect.", nil, nil)
	failedDesc      = prometheus.NewDesc("secbot_failed_effects", "Side effects given up on, by service (matrix, github).", []string{"service"}, nil)
	syncLagDesc     = prometheus.NewDesc("secbot_sync_lag_seconds", "Time since the last successful sync with the homeserver.", nil, nil)
	githubDesc      = prometheus.NewDesc("secbot_github_failing_seconds", "How long GitHub has been failing (0 when it answers).", nil, nil)
	upDesc          = prometheus.NewDesc("secbot_matrix_up", "1 when the last sync with the homeserver succeeded.", nil, nil)
	teamWaitingDesc = prometheus.NewDesc("secbot_team_room_waiting", "1 while the team room refuses secbot's posts (not in it yet, or not known to be encrypted): its notes wait, retried.", nil, nil)
	teamRefusedDesc = prometheus.NewDesc("secbot_team_room_refused_total", "Posts to the team room refused as not ready (retried, never dropped).", nil, nil)
	chatUpDesc      = prometheus.NewDesc("secbot_chat_up", "1 while the chat platform is connected (Matrix: the last sync succeeded; Rocket.Chat: the realtime connection is up and caught up).", []string{"platform"}, nil)
	deadLettersDesc = prometheus.NewDesc("secbot_dead_letter_events", "Events given up on after their handler kept failing.", nil, nil)
)

type collector struct {
	store  *store.Store
	health Health
	rate   GitHubRate
	now    func() time.Time
	log    zerolog.Logger
}

// failedKinds are the kind prefixes (the part before the dot) of each
// service's failed effects: Matrix makes the chat effects, and rows from
// before the kinds were neutral still say matrix.
var failedKinds = map[string][]string{"matrix": {"chat", "matrix"}, "github": {"github"}}

func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{casesDesc, deadlinesDesc, escalationsDesc, refusedDesc, outboxDesc, outboxAgeDesc, failedDesc, syncLagDesc, githubDesc, upDesc, deadLettersDesc, ghRequestsDesc, ghRateLeftDesc, teamWaitingDesc, teamRefusedDesc, chatUpDesc} {
		ch <- d
	}
}

func (c *collector) Collect(ch chan<- prometheus.Metric) {
	now := c.now()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	counts, err := c.store.Counts(ctx, now)
	if err != nil {
		c.log.Error().Err(err).Msg("Could not read metrics")
		return
	}
	for stage, n := range counts.CasesByStage {
		ch <- prometheus.MustNewConstMetric(casesDesc, prometheus.GaugeValue, float64(n), stage)
	}
	ch <- prometheus.MustNewConstMetric(deadlinesDesc, prometheus.GaugeValue, float64(counts.DeadlinesKept), "kept")
	ch <- prometheus.MustNewConstMetric(deadlinesDesc, prometheus.GaugeValue, float64(counts.DeadlinesMissed), "missed")
	ch <- prometheus.MustNewConstMetric(escalationsDesc, prometheus.CounterValue, float64(counts.Escalations))
	ch <- prometheus.MustNewConstMetric(refusedDesc, prometheus.CounterValue, float64(counts.RefusedCommands))
	ch <- prometheus.MustNewConstMetric(outboxDesc, prometheus.GaugeValue, float64(counts.OutboxPending))
	age := 0.0
	if !counts.OutboxOldest.IsZero() {
		age = now.Sub(counts.OutboxOldest).Seconds()
	}
	ch <- prometheus.MustNewConstMetric(outboxAgeDesc, prometheus.GaugeValue, age)
	for _, service := range []string{"matrix", "github"} {
		n := 0
		for _, prefix := range failedKinds[service] {
			n += counts.FailedEffects[prefix]
		}
		ch <- prometheus.MustNewConstMetric(failedDesc, prometheus.GaugeValue, float64(n), service)
	}
	ch <- prometheus.MustNewConstMetric(deadLettersDesc, prometheus.GaugeValue, float64(counts.DeadLetters))
	failing := 0.0
	if !counts.GitHubFailingFrom.IsZero() {
		failing = now.Sub(counts.GitHubFailingFrom).Seconds()
	}
	ch <- prometheus.MustNewConstMetric(githubDesc, prometheus.GaugeValue, failing)
	lag := 0.0
	if last := c.health.LastSync(); !last.IsZero() {
		lag = now.Sub(last).Seconds()
	}
	ch <- prometheus.MustNewConstMetric(syncLagDesc, prometheus.GaugeValue, lag)
	if chats, ok := c.health.(Chats); ok {
		// Each platform its own; secbot_matrix_up stays Matrix's alone.
		for _, h := range chats.ChatHealth() {
			up := map[bool]float64{true: 1}[h.Up]
			ch <- prometheus.MustNewConstMetric(chatUpDesc, prometheus.GaugeValue, up, h.Platform)
			if h.Platform == "matrix" {
				ch <- prometheus.MustNewConstMetric(upDesc, prometheus.GaugeValue, up)
			}
		}
	} else {
		ch <- prometheus.MustNewConstMetric(upDesc, prometheus.GaugeValue, map[bool]float64{true: 1}[c.health.Healthy()])
	}
	if tr, ok := c.health.(TeamRoom); ok {
		waiting, refusals := tr.TeamRoomWaiting()
		ch <- prometheus.MustNewConstMetric(teamWaitingDesc, prometheus.GaugeValue, map[bool]float64{true: 1}[waiting])
		ch <- prometheus.MustNewConstMetric(teamRefusedDesc, prometheus.CounterValue, float64(refusals))
	}
	if c.rate != nil {
		ch <- prometheus.MustNewConstMetric(ghRequestsDesc, prometheus.GaugeValue, float64(c.rate.RequestsLastHour()))
		if left, _, _, known := c.rate.Remaining(); known {
			ch <- prometheus.MustNewConstMetric(ghRateLeftDesc, prometheus.GaugeValue, float64(left))
		}
	}
}

// Handler serves /metrics and /healthz; rate is nil without GitHub.
func Handler(st *store.Store, health Health, rate GitHubRate, now func() time.Time, log zerolog.Logger) http.Handler {
	return ActiveHandler(st, health, rate, now, log, nil)
}

// ActiveHandler is Handler with the instance's office (nil: none) in
// /metrics and in the body of /healthz.
func ActiveHandler(st *store.Store, health Health, rate GitHubRate, now func() time.Time, log zerolog.Logger, office Office) http.Handler {
	reg := prometheus.NewRegistry()
	reg.MustRegister(&collector{store: st, health: health, rate: rate, now: now, log: log})
	if office != nil {
		reg.MustRegister(officeCollector{office})
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		role := ""
		if office != nil {
			role = fmt.Sprintf(" (role=%s epoch=%d)", office.Role(), office.Epoch())
		}
		if office != nil && !office.Active() {
			w.WriteHeader(http.StatusServiceUnavailable)
			fmt.Fprintln(w, "stopping: this instance lost its office"+role)
			return
		}
		if chats, ok := health.(Chats); ok {
			var down []string
			for _, h := range chats.ChatHealth() {
				if h.Up {
					continue
				}
				last := "never yet"
				if !h.Last.IsZero() {
					last = h.Last.UTC().Format(time.RFC3339)
				}
				down = append(down, fmt.Sprintf("%s: %s (last success %s)", h.Platform, h.Down, last))
			}
			if len(down) > 0 {
				w.WriteHeader(http.StatusServiceUnavailable)
				fmt.Fprintln(w, "degraded: "+strings.Join(down, "; ")+role)
				return
			}
		} else if !health.Healthy() {
			w.WriteHeader(http.StatusServiceUnavailable)
			fmt.Fprintln(w, "degraded: not syncing with the homeserver"+role)
			return
		}
		fmt.Fprintln(w, "ok"+role)
	})
	return mux
}

// StandbyHandler serves /healthz and /metrics before the instance is the
// active one: a standby answers 200 with its role; one elected and still
// starting (migrations, login), 503 with its role.
func StandbyHandler(office Office) http.Handler {
	reg := prometheus.NewRegistry()
	reg.MustRegister(officeCollector{office})
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		role := office.Role()
		if role != "standby" {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
		fmt.Fprintf(w, "%s (role=%s epoch=%d)\n", role, role, office.Epoch())
	})
	return mux
}

type officeCollector struct{ office Office }

func (c officeCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- activeDesc
	ch <- epochDesc
	ch <- takeoversDesc
}

func (c officeCollector) Collect(ch chan<- prometheus.Metric) {
	active := 0.0
	if c.office.Active() {
		active = 1
	}
	ch <- prometheus.MustNewConstMetric(activeDesc, prometheus.GaugeValue, active)
	ch <- prometheus.MustNewConstMetric(epochDesc, prometheus.GaugeValue, float64(c.office.Epoch()))
	ch <- prometheus.MustNewConstMetric(takeoversDesc, prometheus.CounterValue, float64(c.office.Takeovers()))
}
