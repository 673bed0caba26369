// Package version is the version every bsdcarp command prints for
// --version: a release number stamped at link time, else the module version
// Go recorded, with the VCS revision of the build.
package version

import (
	"fmt"
	"regexp"
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

// pseudo matches the commit part of a Go pseudo-version
// (v0.0.0-20261129233000-613c510abcde): not a release.
var pseudo = regexp.MustCompile(`-(\d+\.)?\d{14}-[0-9a-f]{12}(\+|$)`)

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
			if mv != "" && mv != "(devel)" && !pseudo.MatchString(info.Main.Version) {
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
