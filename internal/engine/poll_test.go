package engine

import (
	"slices"
	"testing"
	"time"
)

func TestNextPoll(t *testing.T) {
	ms := time.Millisecond
	tests := []struct {
		first, max time.Duration
		want       []time.Duration
	}{
		{firstPoll, 500 * ms, []time.Duration{50 * ms, 100 * ms, 200 * ms, 400 * ms, 500 * ms, 500 * ms}},
		{firstPoll, 2 * ms, []time.Duration{2 * ms, 2 * ms, 2 * ms}},
		{firstPoll, 120 * ms, []time.Duration{50 * ms, 100 * ms, 120 * ms, 120 * ms}},
		{firstTaskPoll, 500 * ms, []time.Duration{5 * ms, 10 * ms, 20 * ms, 40 * ms, 80 * ms, 160 * ms, 320 * ms, 500 * ms}},
	}
	for _, tt := range tests {
		var got []time.Duration
		var w time.Duration
		for range tt.want {
			w = nextPoll(w, tt.first, tt.max)
			got = append(got, w)
		}
		if !slices.Equal(got, tt.want) {
			t.Errorf("first %s, max %s: waits %v, want %v", tt.first, tt.max, got, tt.want)
		}
	}
}
