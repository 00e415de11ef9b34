package iac

import (
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

func checkFixture(t *testing.T, dir string, refs bool) []string {
	t.Helper()
	files, err := ReadTFFiles(dir)
	if err != nil {
		t.Fatal(err)
	}
	var fs []Finding
	if refs {
		fs = CheckReferences(files)
	} else {
		fs = Check(files)
	}
	var out []string
	for _, f := range fs {
		out = append(out, f.String())
	}
	sort.Strings(out)
	return out
}

// TestCheckRules runs each rule on a failing and a passing fixture under
// testdata/check/<rule>/{fail,pass}.
func TestCheckRules(t *testing.T) {
	tests := []struct {
		rule string
		want []string // findings on the failing fixture, as file:line: rule: start of message
	}{
		{RuleOpenIngress, []string{
			"main.tf:4: open-ingress: aws_security_group.ssh allows ports 22-22 from anywhere",
			"main.tf:12: open-ingress: aws_vpc_security_group_ingress_rule.all allows all ports from anywhere",
		}},
		{RuleBucketEncrypted, []string{"main.tf:1: bucket-encryption: bucket aws_s3_bucket.plain has no"}},
		{RuleLogEncrypted, []string{"main.tf:1: log-encryption: log group aws_cloudwatch_log_group.app sets no kms_key_id"}},
		{RuleBackend, []string{"main.tf:1: state-backend: root . configures no state backend"}},
		{RulePlaintextSecret, []string{
			"main.tf:3: plaintext-secret: password is written in plain text",
			`main.tf:8: plaintext-secret: variable "api_token" has a secret default`,
		}},
	}
	for _, tt := range tests {
		t.Run(tt.rule, func(t *testing.T) {
			got := only(checkFixture(t, filepath.Join("testdata/check", tt.rule, "fail"), false), tt.rule)
			sort.Strings(tt.want)
			if len(got) != len(tt.want) {
				t.Fatalf("fail fixture: got %d findings, want %d:\n%s", len(got), len(tt.want), strings.Join(got, "\n"))
			}
			for i := range got {
				if !strings.HasPrefix(got[i], tt.want[i]) {
					t.Errorf("finding %q\nwant prefix %q", got[i], tt.want[i])
				}
			}
			if got := only(checkFixture(t, filepath.Join("testdata/check", tt.rule, "pass"), false), tt.rule); len(got) > 0 {
				t.Errorf("pass fixture has findings:\n%s", strings.Join(got, "\n"))
			}
		})
	}
}

func only(findings []string, rule string) []string {
	var out []string
	for _, f := range findings {
		if strings.Contains(f, ": "+rule+": ") {
			out = append(out, f)
		}
	}
	return out
}

func TestCheckReferencesFixtures(t *testing.T) {
	got := checkFixture(t, "testdata/check/reference/fail", true)
	want := []string{
		"main.tf:6: reference: local.nme is not declared in .",
		"main.tf:10: reference: aws_s3_bucket.log is not declared in .",
		"main.tf:14: reference: var.region is not declared in .",
		`main.tf:17: reference: module "m" does not set required variable "size" of modules/m`,
		`main.tf:20: reference: module "m" (modules/m) has no variable "colour"`,
		`main.tf:24: reference: module.m has no output "missing" (modules/m)`,
	}
	sort.Strings(want)
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("got:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if got := checkFixture(t, "testdata/check/reference/pass", true); len(got) > 0 {
		t.Errorf("pass fixture: %s", strings.Join(got, "\n"))
	}
}

// TestGeneratedTreePassesCheck: Runway's own output passes its own rules.
func TestGeneratedTreePassesCheck(t *testing.T) {
	tree, err := Generate(testInput(t))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range Check(tree.TFFiles()) {
		t.Error(f)
	}
}
