# The hello service: a small HTTP app (main.go in this directory).
# Build it with `go build -o bin/hello .` here, or let `make demo` do it.
service "hello" {
  command = ["./bin/hello", "--port", "{{PORT}}"]
  version = "1.0.0"
  port    = 8080
  env     = { GREETING = "hi" }

  health {
    path                = "/healthz"
    interval            = "1s"
    timeout             = "1s"
    healthy_threshold   = 1
    unhealthy_threshold = 3
  }

  scale {
    min     = 2
    desired = 3
    max     = 10
    spread  = 0.2
  }

  deploy {
    strategy         = "blue_green"
    timeout          = "10m"
    scale_down_delay = "5s"
    # Used when strategy = "canary" (as in production below).
    canary {
      step {
        weight = 10
        pause  = "3s"
      }
      step {
        weight = 50
        pause  = "3s"
      }
      analysis {
        max_error_rate_increase = 0.01
        max_latency_p99_ratio   = 1.5
        min_requests            = 50
      }
    }
  }

  hooks {
    pre_deploy   = ["./bin/hello", "migrate"]
    stop_timeout = "30s"
  }

  alarm "errors" {
    metric     = "error_rate"
    comparison = ">"
    threshold  = 0.05
    for        = "2m"
    notify     = ["ops"]
  }

  environment "production" {
    scale {
      min     = 3
      desired = 6
    }
    deploy {
      strategy = "canary"
    }
  }
}
