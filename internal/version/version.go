// Package version is the version every bsdcarp command prints for
// --version: a release number stamped at link time, else the module version
// Go recorded, with the VCS revision of the build.
package version

import (
	"fmt"
	"runtime/debug"
	"strings"
)

// Version is the release, stamped by the build for packages and releases:
//
//	go build -ldflags "-X github.com/bsdcarp/bsdcarp/internal/version.Version=0.3.0"
//
// Empty in a plain build, which then reports the module version Go recorded
// (a tag of the checkout) or "devel".
var Version string

// isPseudo reports whether v has the commit part of a Go pseudo-version
// (v0.0.0-20261129233000-613c510abcde): not a release. It finds what the
// regular expression -(\d+\.)?\d{14}-[0-9a-f]{12}(\+|$) finds, without
// the regexp package, whose initialisation every command would pay for at
// start-up.
func isPseudo(v string) bool {
	for i := 0; i < len(v); i++ {
		if v[i] != '-' {
			continue
		}
		if pseudoTail(v[i+1:]) {
			return true
		}
		// The optional "\d+." (v0.3.1-0.2026...): its digits end at the dot.
		j := i + 1
		for j < len(v) && isDigit(v[j]) {
			j++
		}
		if j > i+1 && j < len(v) && v[j] == '.' && pseudoTail(v[j+1:]) {
			return true
		}
	}
	return false
}

// pseudoTail reports whether s begins with 14 digits, '-', 12 lower-case
// hex digits, then ends or goes on with '+'.
func pseudoTail(s string) bool {
	if len(s) < 27 || s[14] != '-' || (len(s) > 27 && s[27] != '+') {
		return false
	}
	for i := 0; i < 27; i++ {
		c := s[i]
		switch {
		case i < 14 && !isDigit(c):
			return false
		case i > 14 && !isDigit(c) && (c < 'a' || c > 'f'):
			return false
		}
	}
	return true
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

// String is the --version line of prog, e.g. "carpd 0.3.0 (rev 613c510,
// modified)" or, for a build from a checkout without a release stamp,
// "carpd devel (rev 613c510, 2026-11-29T23:30:00Z)".
func String(prog string) string {
	info, _ := debug.ReadBuildInfo()
	return format(prog, Version, info)
}

func format(prog, stamped string, info *debug.BuildInfo) string {
	v := strings.TrimPrefix(stamped, "v")
	var settings map[string]string
	if info != nil {
		if v == "" {
			mv := strings.TrimSuffix(info.Main.Version, "+dirty")
			if mv != "" && mv != "(devel)" && !isPseudo(info.Main.Version) {
				v = strings.TrimPrefix(mv, "v")
			}
		}
		settings = map[string]string{}
		for _, s := range info.Settings {
			settings[s.Key] = s.Value
		}
	}
	if v == "" {
		v = "devel"
	}
	var detail []string
	if rev := settings["vcs.revision"]; rev != "" {
		if len(rev) > 7 {
			rev = rev[:7]
		}
		detail = append(detail, "rev "+rev)
		// The commit time says how old a development build is; a
		// release number says it already.
		if t := settings["vcs.time"]; t != "" && v == "devel" {
			detail = append(detail, t)
		}
		if settings["vcs.modified"] == "true" {
			detail = append(detail, "modified")
		}
	} else if v == "devel" {
		detail = append(detail, "no VCS information")
	}
	if len(detail) == 0 {
		return fmt.Sprintf("%s %s", prog, v)
	}
	return fmt.Sprintf("%s %s (%s)", prog, v, strings.Join(detail, ", "))
}
