// Package timers runs what secbot does on its own time: due deadlines,
// reminders and escalations (gocron, on an injected clock). The effects it
// decides are recorded through the outbox package.
package timers
