package main

import (
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// packageDirs are the directories of the module that hold Go packages, as
// `go list ./...` finds them ("." for the command itself).
func packageDirs(t *testing.T) []string {
	t.Helper()
	var dirs []string
	err := filepath.WalkDir(".", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		name := d.Name()
		if d.IsDir() && path != "." && (strings.HasPrefix(name, ".") || strings.HasPrefix(name, "_") || name == "testdata") {
			return filepath.SkipDir
		}
		if !d.IsDir() && strings.HasSuffix(name, ".go") && !slices.Contains(dirs, filepath.Dir(path)) {
			dirs = append(dirs, filepath.Dir(path))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return dirs
}

func TestEveryPackageSaysItsJob(t *testing.T) {
	for _, dir := range packageDirs(t) {
		files, err := filepath.Glob(filepath.Join(dir, "*.go"))
		if err != nil {
			t.Fatal(err)
		}
		documented := false
		for _, file := range files {
			if strings.HasSuffix(file, "_test.go") {
				continue
			}
			f, err := parser.ParseFile(token.NewFileSet(), file, nil, parser.PackageClauseOnly|parser.ParseComments)
			if err != nil {
				t.Fatal(err)
			}
			if f.Doc != nil && regexp.MustCompile(`^(Package|Command) \S+ `).MatchString(f.Doc.Text()) {
				documented = true
			}
		}
		if !documented {
			t.Errorf("%s: no package doc comment (\"// Package NAME …\") in its non-test files, so `go doc` says nothing", dir)
		}
	}
}

func TestREADMELayoutTableMatchesThePackages(t *testing.T) {
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, layout, ok := strings.Cut(string(readme), "\n## Layout\n")
	if !ok {
		t.Fatal("README has no Layout section")
	}
	layout, _, _ = strings.Cut(layout, "\n## ")
	row := regexp.MustCompile("(?m)^\\| `([^`]+)`")
	var listed []string
	for _, m := range row.FindAllStringSubmatch(layout, -1) {
		listed = append(listed, strings.TrimSuffix(m[1], "/"))
	}
	dirs := packageDirs(t)
	for _, dir := range dirs {
		n := 0
		for _, l := range listed {
			if l == filepath.ToSlash(dir) {
				n++
			}
		}
		if n != 1 {
			t.Errorf("README's layout table has %d rows for package %s, want one", n, dir)
		}
	}
	for _, l := range listed {
		if !slices.Contains(dirs, filepath.FromSlash(l)) {
			t.Errorf("README's layout table lists %s, which is no package", l)
		}
	}
}
