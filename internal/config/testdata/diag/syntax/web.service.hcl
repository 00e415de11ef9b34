service "web" {
  command = ["./bin/web"
  port = 8080
}
