package bsd

import (
	"io"
	"testing"

	"github.com/bsdcarp/bsdcarp/carp/api/apitest"
)

func benchIfconfig(b *testing.B, n int, args ...string) {
	st := apitest.Status(n)
	p, err := ParseIfconfig(args)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if err := FormatStatus(io.Discard, p, st); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkIfconfigEm0_255(b *testing.B)   { benchIfconfig(b, 255, "em0") }
func BenchmarkIfconfigAll_255(b *testing.B)   { benchIfconfig(b, 255, "-a") }
func BenchmarkIfconfigCarp0_255(b *testing.B) { benchIfconfig(b, 255, "carp0") }
func BenchmarkIfconfigEm0_1(b *testing.B)     { benchIfconfig(b, 1, "em0") }
func BenchmarkIfconfigCarp0_1(b *testing.B)   { benchIfconfig(b, 1, "carp0") }

func BenchmarkSysctlCarp(b *testing.B) {
	st := apitest.Status(255)
	cmd, err := ParseSysctl([]string{"net.inet.carp"})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		EvalSysctl(cmd, st.Knobs, st.Stats, true)
	}
}

func BenchmarkNetstat(b *testing.B) {
	st := apitest.Status(255)
	b.ReportAllocs()
	for b.Loop() {
		if err := FormatNetstat(io.Discard, st.Stats); err != nil {
			b.Fatal(err)
		}
	}
}
