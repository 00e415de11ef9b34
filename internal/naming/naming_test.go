package naming

import "testing"

func TestNames(t *testing.T) {
	tests := []struct{ got, want string }{
		{Environment("production", "example.com"), "production.example.com"},
		{Environment("staging", ""), "staging.localhost"},
		{Environment("staging", "Example.COM."), "staging.example.com"},
		{Service("api", "production", "example.com"), "api.production.example.com"},
		{Service("api", "development", ""), "api.development.localhost"},
		{Preview("web", "production", "example.com"), "web-preview.production.example.com"},
		{Preview("web", "development", ""), "web-preview.development.localhost"},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("got %q, want %q", tt.got, tt.want)
		}
	}
}
