package main

import (
	"bytes"
	"context"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

var summaryLine = regexp.MustCompile(`^plain registry: (\d+)/(\d+) calls reached the rogue server; signet: (\d+)/(\d+)$`)

func TestDemo(t *testing.T) {
	for _, backend := range []string{"memory", "etcd"} {
		t.Run(backend, func(t *testing.T) {
			cfg := config{registry: backend, calls: defaultCalls, tempDir: t.TempDir()}
			ctx, cancel := context.WithTimeout(context.Background(), runTimeout)
			defer cancel()

			var out bytes.Buffer
			errOut := &lockedBuffer{}
			code := run(ctx, cfg, &out, errOut)
			if code != 0 {
				t.Errorf("run exited with %d, want 0\nstdout:\n%s\nstderr:\n%s", code, out.String(), errOut)
			}

			lines := strings.Split(strings.TrimSpace(out.String()), "\n")
			last := lines[len(lines)-1]
			m := summaryLine.FindStringSubmatch(last)
			if m == nil {
				t.Fatalf("last line %q is not the summary line\nstdout:\n%s", last, out.String())
			}
			plainRogue, _ := strconv.Atoi(m[1])
			if plainRogue == 0 {
				t.Errorf("plain registry: 0 calls reached the rogue server, want at least 1 (the attack must be real)")
			}
			if m[2] != "20" || m[4] != "20" {
				t.Errorf("summary counts %s and %s calls, want 20 each", m[2], m[4])
			}
			if m[3] != "0" {
				t.Errorf("signet: %s calls reached the rogue server, want 0", m[3])
			}

			for _, label := range []string{"a", "b", "c", "d"} {
				line := findLine(lines, "("+label+") ")
				if line == "" {
					t.Errorf("no line for attack (%s)\nstdout:\n%s", label, out.String())
					continue
				}
				if !strings.Contains(line, "-> dropped ") {
					t.Errorf("attack (%s) was not dropped: %s", label, line)
				}
			}

			wantReasons := map[string]string{
				"a": "dropped at lookup: unsigned",
				"b": "dropped at lookup: bad-signature",
				"c": "dropped from a watch result: not-allowed",
				"d": "dropped from a watch result: record-expired",
			}
			for label, want := range wantReasons {
				if line := findLine(lines, "("+label+") "); !strings.Contains(line, want) {
					t.Errorf("attack (%s) line %q does not contain %q", label, line, want)
				}
			}
		})
	}
}

func findLine(lines []string, prefix string) string {
	for _, l := range lines {
		if strings.HasPrefix(l, prefix) {
			return l
		}
	}
	return ""
}

func TestParseFlags(t *testing.T) {
	cases := []struct {
		name    string
		args    []string
		wantErr string
	}{
		{"defaults", nil, ""},
		{"memory", []string{"-registry", "memory", "-n", "50"}, ""},
		{"loopback etcd", []string{"-address", "127.0.0.1:2379"}, ""},
		{"loopback ipv6", []string{"-registry", "consul", "-address", "[::1]:8500"}, ""},
		{"localhost", []string{"-address", "localhost:2379"}, ""},
		{"remote rejected", []string{"-address", "192.0.2.10:2379"}, "not a loopback address"},
		{"remote allowed", []string{"-address", "192.0.2.10:2379", "-allow-remote"}, ""},
		{"consul needs address", []string{"-registry", "consul"}, "needs -address"},
		{"memory has no address", []string{"-registry", "memory", "-address", "127.0.0.1:2379"}, "has no address"},
		{"mdns", []string{"-registry", "mdns"}, "is not etcd, memory or consul"},
		{"no port", []string{"-address", "127.0.0.1"}, "not host:port"},
		{"too few calls", []string{"-n", "1"}, "outside 2 to"},
		{"too many calls", []string{"-n", "1001"}, "outside 2 to"},
		{"extra argument", []string{"extra"}, "unexpected argument"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var usage bytes.Buffer
			cfg, err := parseFlags(tc.args, &usage)
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("parseFlags(%q) failed: %v", tc.args, err)
				}
				if cfg.calls < 2 {
					t.Errorf("calls = %d, want at least 2", cfg.calls)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("parseFlags(%q) error = %v, want one containing %q", tc.args, err, tc.wantErr)
			}
		})
	}
}

func TestVerdict(t *testing.T) {
	cases := []struct {
		name       string
		plain      tally
		protected  tally
		allDropped bool
		wantCode   int
		wantFail   string
	}{
		{"attack stopped", tally{rogue: 12, genuine: 8}, tally{genuine: 20}, true, 0, ""},
		{"signet leaked", tally{rogue: 12, genuine: 8}, tally{rogue: 1, genuine: 19}, true, 1, "calls through signet reached the rogue server"},
		{"record passed", tally{rogue: 12, genuine: 8}, tally{genuine: 20}, false, 1, "signet passed on a rogue record"},
		{"no attack shown", tally{genuine: 20}, tally{genuine: 20}, true, 1, "showed no attack to stop"},
		{"signet calls failed", tally{rogue: 12, genuine: 8}, tally{genuine: 18, failed: 2}, true, 1, "only 18 of 20 calls through signet"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var out bytes.Buffer
			code := verdict(&out, 20, tc.plain, tc.protected, tc.allDropped)
			if code != tc.wantCode {
				t.Errorf("verdict returned %d, want %d", code, tc.wantCode)
			}

			lines := strings.Split(strings.TrimSpace(out.String()), "\n")
			if !summaryLine.MatchString(lines[len(lines)-1]) {
				t.Errorf("last line %q is not the summary line", lines[len(lines)-1])
			}
			hasFail := strings.Contains(out.String(), "FAIL: ")
			if tc.wantFail == "" && hasFail {
				t.Errorf("verdict wrote a FAIL line for a successful run:\n%s", out.String())
			}
			if tc.wantFail != "" && !strings.Contains(out.String(), tc.wantFail) {
				t.Errorf("output does not contain %q:\n%s", tc.wantFail, out.String())
			}
		})
	}
}
