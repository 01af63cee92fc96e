package record

import (
	"strings"
	"testing"
)

func TestCanonicalAddress(t *testing.T) {
	cases := []struct{ in, want string }{
		// Consul rebuilds addresses from Service.Address and Service.Port.
		{"10.0.0.1", "10.0.0.1:0"},
		{"10.0.0.1:0", "10.0.0.1:0"},
		{"10.0.0.1:", "10.0.0.1:0"},
		{"10.0.0.1:8080", "10.0.0.1:8080"},
		{"10.0.0.1:08080", "10.0.0.1:8080"},
		{"[0:0::1]:80", "[::1]:80"},
		{"[0000:0000:0000:0000:0000:0000:0000:0001]:80", "[::1]:80"},
		{"[::1]:8080", "[::1]:8080"},
		{"::1", "[::1]:0"},
		{"[::1]", "[::1]:0"},
		{"[::1]:", "[::1]:0"},
		{"2001:DB8::1", "[2001:db8::1]:0"},
		{"[2001:DB8:0:0:0:0:0:1]:443", "[2001:db8::1]:443"},
		{"[::ffff:10.0.0.1]:80", "[::ffff:10.0.0.1]:80"},
		{"[fe80::1%eth0]:80", "[fe80::1%eth0]:80"},
		{"[1.2.3.4]:80", "1.2.3.4:80"},
		{"greeter.svc.cluster.local:9000", "greeter.svc.cluster.local:9000"},
		{"Greeter.SVC.Cluster.Local:9000", "greeter.svc.cluster.local:9000"},
		{"LOCALHOST", "localhost:0"},
		{"my_host-1:65535", "my_host-1:65535"},
		{"host:0", "host:0"},
	}
	for _, tc := range cases {
		got, err := CanonicalAddress(tc.in)
		if err != nil {
			t.Errorf("CanonicalAddress(%q) failed: %v", tc.in, err)
			continue
		}
		if got != tc.want {
			t.Errorf("CanonicalAddress(%q) = %q, want %q", tc.in, got, tc.want)
		}
		again, err := CanonicalAddress(got)
		if err != nil || again != got {
			t.Errorf("CanonicalAddress(%q) = %q, %v; a canonical address must map to itself", got, again, err)
		}
	}
}

func TestCanonicalAddressRejects(t *testing.T) {
	for _, in := range []string{
		"",
		":80",
		":",
		"[]",
		"[]:80",
		"10.0.0.1:65536",
		"10.0.0.1:-1",
		"10.0.0.1:+80",
		"10.0.0.1:http",
		"10.0.0.1:80:90",
		"host name:80",
		"host/path:80",
		"http://host:80",
		"host:80/x",
		"ho\x00st:80",
		"[fe80::1%]:80",
		"[[::1]]:80",
		strings.Repeat("a", 254) + ":80",
		"hôst:80",
	} {
		if got, err := CanonicalAddress(in); err == nil {
			t.Errorf("CanonicalAddress(%q) = %q; want an error", in, got)
		} else if len(err.Error()) > 600 {
			t.Errorf("CanonicalAddress(%q) error is %d bytes", in, len(err.Error()))
		}
	}
}

func TestCanonicalAddressDistinct(t *testing.T) {
	// Addresses that reach different endpoints must stay different.
	pairs := [][2]string{
		{"10.0.0.1:80", "10.0.0.1:81"},
		{"10.0.0.1:80", "10.0.0.10:80"},
		{"[::1]:80", "127.0.0.1:80"},
		{"[::ffff:127.0.0.1]:80", "127.0.0.1:80"},
		{"example.com:80", "example.com.:80"},
		{"[fe80::1%eth0]:80", "[fe80::1%eth1]:80"},
	}
	for _, p := range pairs {
		a, errA := CanonicalAddress(p[0])
		b, errB := CanonicalAddress(p[1])
		if errA != nil || errB != nil {
			t.Errorf("CanonicalAddress(%q, %q): %v, %v", p[0], p[1], errA, errB)
			continue
		}
		if a == b {
			t.Errorf("CanonicalAddress maps %q and %q both to %q", p[0], p[1], a)
		}
	}
}

func TestCanonicalAddressZone(t *testing.T) {
	for _, in := range []string{"::0%]", "::% 0", "[fe80::1%a]b]:80", "fe80::1%eth0\n", "[fe80::1%eth/0]:80"} {
		if got, err := CanonicalAddress(in); err == nil {
			t.Errorf("CanonicalAddress(%q) = %q; want an error for the zone", in, got)
		}
	}
	if got, err := CanonicalAddress("fe80::1%eth0.100"); err != nil || got != "[fe80::1%eth0.100]:0" {
		t.Errorf("CanonicalAddress(fe80::1%%eth0.100) = %q, %v", got, err)
	}
}
