package version

import (
	"regexp"
	"runtime/debug"
	"strings"
	"testing"
)

func TestFormat(t *testing.T) {
	vcs := func(mod string, kv ...string) *debug.BuildInfo {
		bi := &debug.BuildInfo{Main: debug.Module{Path: "github.com/bsdcarp/bsdcarp", Version: mod}}
		for i := 0; i+1 < len(kv); i += 2 {
			bi.Settings = append(bi.Settings, debug.BuildSetting{Key: kv[i], Value: kv[i+1]})
		}
		return bi
	}
	rev := "613c510aaaabbbbccccddddeeeeffff000011112"
	for _, c := range []struct {
		name, stamped string
		info          *debug.BuildInfo
		want          string
	}{
		{"release stamp, modified tree", "0.3.0", vcs("v0.0.0-20261129233000-613c510aaaab+dirty", "vcs.revision", rev, "vcs.time", "2026-11-29T23:30:00Z", "vcs.modified", "true"), "carpd 0.3.0 (rev 613c510, modified)"},
		{"stamp with a v", "v0.3.0", vcs("(devel)", "vcs.revision", rev, "vcs.modified", "false"), "carpd 0.3.0 (rev 613c510)"},
		{"tagged checkout", "", vcs("v0.3.1", "vcs.revision", rev, "vcs.time", "2026-11-29T23:30:00Z", "vcs.modified", "false"), "carpd 0.3.1 (rev 613c510)"},
		{"pseudo-version is devel", "", vcs("v0.0.0-20261129233000-613c510aaaab+dirty", "vcs.revision", rev, "vcs.time", "2026-11-29T23:30:00Z", "vcs.modified", "true"), "carpd devel (rev 613c510, 2026-11-29T23:30:00Z, modified)"},
		{"pseudo-version after a tag", "", vcs("v0.3.1-0.20261129233000-613c510aaaab", "vcs.revision", rev, "vcs.modified", "false"), "carpd devel (rev 613c510)"},
		{"no .git (or -buildvcs=false)", "", vcs("(devel)"), "carpd devel (no VCS information)"},
		{"release without .git", "0.3.0", vcs("(devel)"), "carpd 0.3.0"},
		{"no build info", "", nil, "carpd devel (no VCS information)"},
	} {
		if got := format("carpd", c.stamped, c.info); got != c.want {
			t.Errorf("%s: got %q, want %q", c.name, got, c.want)
		}
	}
}

// The test binary has build info: String names the program and a version.
func TestStringOfThisBuild(t *testing.T) {
	got := String("ifconfig-carp")
	if !strings.HasPrefix(got, "ifconfig-carp ") || len(got) <= len("ifconfig-carp ") {
		t.Fatalf("String = %q", got)
	}
}

// pseudoRE is the regular expression isPseudo stands for.
var pseudoRE = regexp.MustCompile(`-(\d+\.)?\d{14}-[0-9a-f]{12}(\+|$)`)

func TestIsPseudoIsTheRegexp(t *testing.T) {
	for _, v := range []string{"", "v0.3.1", "(devel)", "v0.0.0-20261129233000-613c510aaaab", "v0.0.0-20261129233000-613c510aaaab+dirty",
		"v0.3.1-0.20261129233000-613c510aaaab", "v0.3.1-12.20261129233000-613c510aaaab", "v0.3.1-.20261129233000-613c510aaaab",
		"v0.0.0-20261129233000-613c510aaaabc", "v0.0.0-20261129233000-613C510AAAAB", "v0.0.0-2026112923300-613c510aaaab",
		"v0.0.0-20261129233000_613c510aaaab", "v1.2.3-pre-20261129233000-613c510aaaab", "--20261129233000-613c510aaaab",
		"v0.3.1-0.1.20261129233000-613c510aaaab", "-20261129233000-613c510aaaab+", "v0.0.0-x20261129233000-613c510aaaab"} {
		if got, want := isPseudo(v), pseudoRE.MatchString(v); got != want {
			t.Errorf("isPseudo(%q) = %v, the regexp says %v", v, got, want)
		}
	}
}

func FuzzIsPseudo(f *testing.F) {
	f.Add("v0.3.1-0.20261129233000-613c510aaaab+dirty")
	f.Fuzz(func(t *testing.T, v string) {
		if got, want := isPseudo(v), pseudoRE.MatchString(v); got != want {
			t.Errorf("isPseudo(%q) = %v, the regexp says %v", v, got, want)
		}
	})
}
