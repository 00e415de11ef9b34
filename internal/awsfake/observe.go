package awsfake

import (
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
	"time"
)

type logEvent struct {
	t    time.Time
	id   string
	text string
}

// appendLog is the awslogs log driver: a container's line lands in its
// stream at once (assumption: no delivery delay).
func (f *Fake) appendLog(group, stream, line string) {
	f.logMu.Lock()
	defer f.logMu.Unlock()
	streams := f.st.logGroups[group]
	if streams == nil {
		return
	}
	f.st.logSeq++
	streams[stream] = append(streams[stream], logEvent{t: time.Now(), id: fmt.Sprintf("%020d", f.st.logSeq), text: line})
}

func logsFilterLogEvents(s *state, in map[string]any) (map[string]any, *APIError) {
	s.f.logMu.Lock()
	defer s.f.logMu.Unlock()
	streams := s.logGroups[str(in, "logGroupName")]
	if streams == nil {
		return nil, apiErr(400, "ResourceNotFoundException", "The specified log group does not exist.")
	}
	prefix := str(in, "logStreamNamePrefix")
	start, end := num(in, "startTime"), num(in, "endTime")
	var out []map[string]any
	for name, evs := range streams {
		if !strings.HasPrefix(name, prefix) {
			continue
		}
		for _, e := range evs {
			ms := e.t.UnixMilli()
			if (start > 0 && ms < start) || (end > 0 && ms > end) {
				continue
			}
			if p := str(in, "filterPattern"); p != "" && !strings.Contains(e.text, strings.Trim(p, `"`)) {
				continue
			}
			out = append(out, map[string]any{"logStreamName": name, "timestamp": ms, "ingestionTime": ms, "message": e.text, "eventId": e.id})
		}
	}
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i]["timestamp"].(int64), out[j]["timestamp"].(int64)
		if a != b {
			return a < b
		}
		return out[i]["eventId"].(string) < out[j]["eventId"].(string)
	})
	return map[string]any{"events": orEmpty(out), "searchedLogStreams": []any{}}, nil
}

func logsDescribeLogStreams(s *state, in map[string]any) (map[string]any, *APIError) {
	s.f.logMu.Lock()
	defer s.f.logMu.Unlock()
	streams := s.logGroups[str(in, "logGroupName")]
	if streams == nil {
		return nil, apiErr(400, "ResourceNotFoundException", "The specified log group does not exist.")
	}
	var out []map[string]any
	for name, evs := range streams {
		if p := str(in, "logStreamNamePrefix"); p != "" && !strings.HasPrefix(name, p) {
			continue
		}
		m := map[string]any{"logStreamName": name}
		if len(evs) > 0 {
			m["firstEventTimestamp"] = evs[0].t.UnixMilli()
			m["lastEventTimestamp"] = evs[len(evs)-1].t.UnixMilli()
		}
		out = append(out, m)
	}
	sort.Slice(out, func(i, j int) bool { return out[i]["logStreamName"].(string) < out[j]["logStreamName"].(string) })
	return map[string]any{"logStreams": orEmpty(out)}, nil
}

// cwGetMetricData serves the AWS/ApplicationELB figures the data plane
// measured per target group and minute: RequestCount and
// HTTPCode_Target_5XX_Count (Sum), TargetResponseTime (Average or pNN).
func cwGetMetricData(s *state, in map[string]any) (map[string]any, *APIError) {
	start, _ := in["StartTime"].(time.Time)
	end, _ := in["EndTime"].(time.Time)
	if !end.After(start) {
		return nil, apiErr(400, "InvalidParameterValue", "The parameter StartTime must be less than the parameter EndTime.")
	}
	var results []map[string]any
	for _, q := range asList(in["MetricDataQueries"]) {
		qm := q.(map[string]any)
		ms := obj(qm, "MetricStat")
		if ms == nil {
			return nil, apiErr(400, "InvalidParameterValue", "the fake serves MetricStat queries only")
		}
		period := num(ms, "Period")
		if period < 60 || period%60 != 0 {
			return nil, apiErr(400, "InvalidParameterValue", "The parameter MetricDataQueries.member.1.MetricStat.Period must be a multiple of 60 for metrics older than 3 hours or standard resolution metrics.")
		}
		metric := obj(ms, "Metric")
		var tgDim string
		for _, d := range asList(metric["Dimensions"]) {
			dm := d.(map[string]any)
			if str(dm, "Name") == "TargetGroup" {
				tgDim = str(dm, "Value")
			}
		}
		var tgArn string
		for arn := range s.tgs {
			if strings.HasSuffix(arn, ":"+tgDim) {
				tgArn = arn
			}
		}
		buckets := s.metrics[tgArn]
		var ts []time.Time
		var vals []float64
		for p := start.Unix() / 60 * 60; p < end.Unix(); p += period {
			var reqs, errs int64
			var lat []float64
			for m := p / 60; m < (p+period)/60; m++ {
				if b := buckets[m]; b != nil {
					reqs += b.requests
					errs += b.errors5xx
					lat = append(lat, b.latencies...)
				}
			}
			if reqs == 0 {
				continue // CloudWatch returns no datapoint for a period without data
			}
			var v float64
			switch str(metric, "MetricName") + "/" + str(ms, "Stat") {
			case "RequestCount/Sum":
				v = float64(reqs)
			case "HTTPCode_Target_5XX_Count/Sum":
				if errs == 0 {
					continue
				}
				v = float64(errs)
			default:
				if str(metric, "MetricName") != "TargetResponseTime" {
					return nil, apiErr(400, "InvalidParameterValue", "the fake does not measure %s with %s", str(metric, "MetricName"), str(ms, "Stat"))
				}
				v = latencyStat(lat, str(ms, "Stat"))
			}
			ts, vals = append(ts, time.Unix(p, 0).UTC()), append(vals, v)
		}
		// Newest first, as TimestampDescending (the default) orders them.
		for i, j := 0, len(ts)-1; i < j; i, j = i+1, j-1 {
			ts[i], ts[j] = ts[j], ts[i]
			vals[i], vals[j] = vals[j], vals[i]
		}
		results = append(results, map[string]any{"Id": str(qm, "Id"), "Label": str(metric, "MetricName"), "Timestamps": ts, "Values": vals, "StatusCode": "Complete"})
	}
	return map[string]any{"MetricDataResults": orEmpty(results), "Messages": []any{}}, nil
}

func latencyStat(lat []float64, stat string) float64 {
	if len(lat) == 0 {
		return 0
	}
	if stat == "Average" {
		sum := 0.0
		for _, l := range lat {
			sum += l
		}
		return sum / float64(len(lat))
	}
	q, err := strconv.ParseFloat(strings.TrimPrefix(stat, "p"), 64)
	if err != nil {
		return 0
	}
	s := append([]float64(nil), lat...)
	sort.Float64s(s)
	i := int(math.Ceil(q/100*float64(len(s)))) - 1
	return s[max(0, min(i, len(s)-1))]
}
