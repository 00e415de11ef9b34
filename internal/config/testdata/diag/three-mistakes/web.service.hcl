service "web" {
  command = ["./bin/web", "--port", "{{PROT}}"]
  prot    = 8080
  scale {
    min     = 4
    desired = 3
  }
}
