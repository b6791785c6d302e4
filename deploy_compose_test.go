package main

import (
	"os"
	"slices"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// deploy/compose.yaml (no Docker here to run it) parses, runs PostgreSQL 15
// with every setting of deploy/postgresql-secbot.conf, and two secbot
// instances alike: the same image, config and secrets (files, no secret
// in the environment), each restarted by Docker.
func TestTheComposeFileRunsTwoInstancesOnPostgres(t *testing.T) {
	raw, err := os.ReadFile("deploy/compose.yaml")
	if err != nil {
		t.Fatal(err)
	}
	type service struct {
		Image       string            `yaml:"image"`
		Restart     string            `yaml:"restart"`
		Command     []string          `yaml:"command"`
		Environment map[string]string `yaml:"environment"`
		Secrets     []string          `yaml:"secrets"`
		Volumes     []string          `yaml:"volumes"`
		DependsOn   map[string]struct {
			Condition string `yaml:"condition"`
		} `yaml:"depends_on"`
		Build struct {
			Context    string `yaml:"context"`
			Dockerfile string `yaml:"dockerfile"`
		} `yaml:"build"`
	}
	var compose struct {
		Services map[string]service `yaml:"services"`
		Secrets  map[string]struct {
			File string `yaml:"file"`
		} `yaml:"secrets"`
	}
	if err := yaml.Unmarshal(raw, &compose); err != nil {
		t.Fatalf("deploy/compose.yaml: %v", err)
	}
	pg, ok := compose.Services["postgres"]
	if !ok || !strings.HasPrefix(pg.Image, "postgres:15") {
		t.Fatalf("no PostgreSQL 15 service: %+v", pg)
	}
	conf, err := os.ReadFile("deploy/postgresql-secbot.conf")
	if err != nil {
		t.Fatal(err)
	}
	settings := 0
	for _, line := range strings.Split(string(conf), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		key, value, ok := strings.Cut(line, "=")
		if !ok {
			t.Fatalf("postgresql-secbot.conf: %q", line)
		}
		settings++
		want := strings.TrimSpace(key) + "=" + strings.TrimSpace(value)
		if i := slices.Index(pg.Command, want); i < 1 || pg.Command[i-1] != "-c" {
			t.Errorf("the postgres service lacks -c %s (postgresql-secbot.conf): %v", want, pg.Command)
		}
	}
	if settings < 5 {
		t.Errorf("only %d settings in postgresql-secbot.conf", settings)
	}
	var instances []service
	for name, s := range compose.Services {
		if strings.HasPrefix(name, "secbot") {
			instances = append(instances, s)
		}
	}
	if len(instances) != 2 {
		t.Fatalf("%d secbot services, want 2", len(instances))
	}
	for _, s := range append(instances, pg) {
		for k, v := range s.Environment {
			if strings.Contains(strings.ToUpper(k), "PASSWORD") && !strings.HasSuffix(k, "_FILE") {
				t.Errorf("a secret in the environment: %s=%s", k, v)
			}
		}
		for _, name := range s.Secrets {
			if f := compose.Secrets[name].File; !strings.HasPrefix(f, "./secrets/") {
				t.Errorf("secret %s is not a file under ./secrets: %q", name, f)
			}
		}
	}
	a, b := instances[0], instances[1]
	if a.Image != b.Image || a.Build != b.Build || !slices.Equal(a.Volumes, b.Volumes) || !slices.Equal(a.Secrets, b.Secrets) {
		t.Errorf("the two instances differ: %+v, %+v", a, b)
	}
	if _, err := os.Stat("deploy/" + a.Build.Context + "/" + a.Build.Dockerfile); err != nil {
		t.Errorf("the image's Dockerfile: %v", err)
	}
	if a.Restart != "unless-stopped" || a.DependsOn["postgres"].Condition != "service_healthy" {
		t.Errorf("restart %q, depends on %+v", a.Restart, a.DependsOn)
	}
	if !slices.Contains(a.Volumes, "./secbot.toml:/data/secbot.toml:ro") || !slices.Contains(a.Secrets, "db-password") {
		t.Errorf("volumes %v secrets %v", a.Volumes, a.Secrets)
	}
}
