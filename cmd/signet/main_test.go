package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// result is the outcome of one in-process run.
type result struct {
	code   int
	stdout string
	stderr string
}

// runSignet runs the command line args through run, as main does.
func runSignet(t *testing.T, args ...string) result {
	t.Helper()
	var stdout, stderr bytes.Buffer
	code := run(args, &stdout, &stderr)
	return result{code: code, stdout: stdout.String(), stderr: stderr.String()}
}

// runCommand runs args through c with fresh output buffers.
func runCommand(c *command, args ...string) result {
	var stdout, stderr bytes.Buffer
	c.stdout, c.stderr = &stdout, &stderr
	code := c.run(args)
	return result{code: code, stdout: stdout.String(), stderr: stderr.String()}
}

// mustSucceed fails the test unless r has exit status 0.
func (r result) mustSucceed(t *testing.T, what string) result {
	t.Helper()
	if r.code != exitOK {
		t.Fatalf("%s: exit status %d, want 0\nstdout:\n%s\nstderr:\n%s", what, r.code, r.stdout, r.stderr)
	}
	return r
}

// keyPair runs keygen in dir and returns the paths of the key files.
func keyPair(t *testing.T, dir, name string) (keyFile, pubFile string) {
	t.Helper()
	keyFile, pubFile = filepath.Join(dir, name+".key"), filepath.Join(dir, name+".pub")
	runSignet(t, "keygen", "-o", keyFile, "-pub", pubFile).mustSucceed(t, "keygen "+name)
	return keyFile, pubFile
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

func TestUsageExitStatus(t *testing.T) {
	if r := runSignet(t); r.code != exitError || !strings.Contains(r.stderr, "Usage:") {
		t.Errorf("no arguments: status %d, stderr %q; want 2 and the usage", r.code, r.stderr)
	}
	if r := runSignet(t, "help"); r.code != exitOK || !strings.Contains(r.stdout, "Examples:") {
		t.Errorf("help: status %d, stdout %q; want 0 and the usage", r.code, r.stdout)
	}
	if r := runSignet(t, "help", "purge"); r.code != exitOK || !strings.Contains(r.stderr, "-yes") {
		t.Errorf("help purge: status %d, stderr %q; want 0 and the purge flags", r.code, r.stderr)
	}
	if r := runSignet(t, "frobnicate"); r.code != exitError || !strings.Contains(r.stderr, "unknown command frobnicate") {
		t.Errorf("unknown command: status %d, stderr %q", r.code, r.stderr)
	}
	if r := runSignet(t, "keygen", "-bogus"); r.code != exitError || !strings.Contains(r.stderr, "-bogus") {
		t.Errorf("unknown flag: status %d, stderr %q", r.code, r.stderr)
	}
}

func TestPrintableQuotesControls(t *testing.T) {
	cases := map[string]string{
		"":                      "-",
		"greeter-1":             "greeter-1",
		"a b":                   "a b",
		"evil\n127.0.0.1  ok":   `"evil\n127.0.0.1  ok"`,
		"\x1b[2Jclear":          `"\x1b[2Jclear"`,
		"tab\there":             `"tab\there"`,
		"bidi\u202eoverride":    `"bidi\u202eoverride"`,
		"bad utf8 \xff":         `"bad utf8 \xff"`,
		strings.Repeat("x", 97): strings.Repeat("x", 96) + "...",
	}
	for in, want := range cases {
		if got := printable(in); got != want {
			t.Errorf("printable(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestParseFlagsAfterArguments(t *testing.T) {
	c := &command{stderr: &bytes.Buffer{}}
	flagSet := c.flags("test", "")
	asJSON := flagSet.Bool("json", false, "")
	var list listFlag
	flagSet.Var(&list, "kid", "")

	positional, _, ok := parse(flagSet, []string{"a.pub", "-json", "-kid", "x,y", "b.pub", "--", "-c.pub"})
	if !ok {
		t.Fatal("parse failed")
	}
	if !*asJSON {
		t.Error("-json after a positional argument was not parsed")
	}
	if strings.Join(list, " ") != "x y" {
		t.Errorf("-kid = %v, want [x y]", list)
	}
	if strings.Join(positional, " ") != "a.pub b.pub -c.pub" {
		t.Errorf("positional arguments = %q, want a.pub b.pub -c.pub", positional)
	}
}
