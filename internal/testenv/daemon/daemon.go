// Package daemon runs the real servers the tests use (Dendrite, maddy) as
// child processes: each in its own process group, its output in a file of
// its own folder (servers log secrets such as access tokens), stopped
// politely and then firmly.
package daemon

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"
)

// Process is a running server.
type Process struct {
	cmd  *exec.Cmd
	done chan error
	// Log is the file its output goes to.
	Log string
}

// Start runs bin with args in dir, its output appended to dir/logName.
func Start(dir, logName, bin string, args ...string) (*Process, error) {
	log := filepath.Join(dir, logName)
	logFile, err := os.OpenFile(log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, args...)
	cmd.Dir = dir
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		_ = logFile.Close()
		return nil, fmt.Errorf("start %s: %w", filepath.Base(bin), err)
	}
	p := &Process{cmd: cmd, done: make(chan error, 1), Log: log}
	go func() { p.done <- cmd.Wait(); _ = logFile.Close() }()
	return p, nil
}

// WaitReady polls ready every interval until it says yes, the process
// exits, ctx ends or timeout passes; on failure the process is stopped.
func (p *Process) WaitReady(ctx context.Context, timeout, interval time.Duration, ready func() bool) error {
	deadline := time.Now().Add(timeout)
	for !ready() {
		if time.Now().After(deadline) {
			p.Stop()
			return fmt.Errorf("%s was not ready within %s (see %s)", filepath.Base(p.cmd.Path), timeout, p.Log)
		}
		select {
		case err := <-p.done:
			p.done <- err
			return fmt.Errorf("%s exited during start-up: %v (see %s)", filepath.Base(p.cmd.Path), err, p.Log)
		case <-ctx.Done():
			p.Stop()
			return ctx.Err()
		case <-time.After(interval):
		}
	}
	return nil
}

// Stop terminates the process group and waits for it to exit: SIGTERM,
// then SIGKILL after 15 s.
func (p *Process) Stop() {
	if p == nil || p.cmd.Process == nil {
		return
	}
	_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGTERM)
	select {
	case err := <-p.done:
		p.done <- err
	case <-time.After(15 * time.Second):
		_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
		p.done <- <-p.done
	}
}

// Kill ends the process group at once, as a crash would (SIGKILL), and
// waits for the process to exit.
func (p *Process) Kill() {
	if p == nil || p.cmd.Process == nil {
		return
	}
	_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
	err := <-p.done
	p.done <- err
}
