package engine

import (
	"slices"
	"testing"
	"time"
)

func TestNextPoll(t *testing.T) {
	ms := time.Millisecond
	tests := []struct {
		max  time.Duration
		want []time.Duration
	}{
		{500 * ms, []time.Duration{50 * ms, 100 * ms, 200 * ms, 400 * ms, 500 * ms, 500 * ms}},
		{2 * ms, []time.Duration{2 * ms, 2 * ms, 2 * ms}},
		{120 * ms, []time.Duration{50 * ms, 100 * ms, 120 * ms, 120 * ms}},
	}
	for _, tt := range tests {
		var got []time.Duration
		var w time.Duration
		for range tt.want {
			w = nextPoll(w, tt.max)
			got = append(got, w)
		}
		if !slices.Equal(got, tt.want) {
			t.Errorf("max %s: waits %v, want %v", tt.max, got, tt.want)
		}
	}
}
