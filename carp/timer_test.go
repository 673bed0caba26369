package carp

import (
	"testing"
	"time"
)

func TestTimerArithmetic(t *testing.T) {
	us := time.Microsecond
	tests := []struct {
		name      string
		got, want time.Duration
	}{
		{"skew(0) is nothing", Skew(0), 0},
		{"skew(1) truncates to 3906us", Skew(1), 3906 * us},
		{"skew(100) is 390625us", Skew(100), 390625 * us},
		{"skew(240) is 937500us", Skew(240), 937500 * us},
		{"skew(255) truncates to 996093us", Skew(255), 996093 * us},
		{"advert interval 1s + skew(0)", AdvInterval(1, 0), time.Second},
		{"advert interval 2s + skew(100)", AdvInterval(2, 100), 2*time.Second + 390625*us},
		{"bow-out interval 255s + skew(255)", AdvInterval(BowOutAdvBase, BowOutAdvSkew), 255*time.Second + 996093*us},
		{"master down triples advbase, not the skew", MasterDown(1, 100), 3*time.Second + 390625*us},
		{"master down of advbase 255", MasterDown(255, 254), 765*time.Second + 992187*us},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.got != tt.want {
				t.Errorf("got %v, want %v", tt.got, tt.want)
			}
		})
	}
}

func TestEffectiveSkew(t *testing.T) {
	tests := []struct {
		name     string
		advskew  uint8
		demotion int
		want     uint8
	}{
		{"no demotion", 100, 0, 100},
		{"demotion adds", 100, 40, 140},
		{"clamped to 240", 100, 240, 240},
		{"advskew 241 is advertised as 240", 241, 0, 240},
		{"advskew 254 is advertised as 240", 254, 0, 240},
		{"negative demotion promotes", 100, -30, 70},
		{"never below 0", 10, -30, 0},
		{"huge demotion does not overflow", 0, int(^uint(0) >> 1), 240},
		{"huge promotion does not overflow", 254, -int(^uint(0)>>1) - 1, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := EffectiveSkew(tt.advskew, tt.demotion); got != tt.want {
				t.Errorf("EffectiveSkew(%d, %d) = %d, want %d", tt.advskew, tt.demotion, got, tt.want)
			}
		})
	}
}
