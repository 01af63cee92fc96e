package main

import (
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// maxDisplayLen is the longest value printed in text output before it is
// cut; JSON output carries values whole.
const maxDisplayLen = 96

// printable returns s ready for a terminal line, cut to maxDisplayLen
// bytes, with "-" for an empty value. See [sanitize].
func printable(s string) string {
	if s == "" {
		return "-"
	}
	if len(s) <= maxDisplayLen {
		return sanitize(s)
	}

	n := maxDisplayLen
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return sanitize(s[:n]) + "..."
}

// sanitize returns s quoted when it contains a character that is not
// graphic (a tab, newline, escape sequence or bidirectional override) or
// invalid UTF-8, and s itself otherwise. Registry records and tokens come
// from anyone with write access to the registry, and quoting keeps such a
// value from moving the cursor or faking a line of output.
func sanitize(s string) string {
	if strings.ContainsFunc(s, func(r rune) bool { return r == utf8.RuneError || r != ' ' && !unicode.IsGraphic(r) }) {
		return strconv.Quote(s)
	}
	return s
}

// printableList joins printable items with ", ".
func printableList(items []string) string {
	if len(items) == 0 {
		return "-"
	}
	out := make([]string, len(items))
	for i, item := range items {
		out[i] = printable(item)
	}
	return strings.Join(out, ", ")
}

// formatTime returns t in UTC as RFC 3339, or "-" for the zero time.
func formatTime(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format(time.RFC3339)
}

// formatRelative returns t as RFC 3339 with how far it lies from now,
// such as "2026-01-02T15:04:05Z (in 23h59m)".
func formatRelative(t, now time.Time) string {
	if t.IsZero() {
		return "-"
	}
	d := t.Sub(now).Round(time.Second)
	switch {
	case d > 0:
		return formatTime(t) + " (in " + d.String() + ")"
	case d < 0:
		return formatTime(t) + " (" + (-d).String() + " ago)"
	default:
		return formatTime(t) + " (now)"
	}
}

// plural returns "1 key" or "n keys".
func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return strconv.Itoa(n) + " " + noun + "s"
}
