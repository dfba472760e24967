import {
  to = trustgate_workload_connection_activation.deploy
  id = "github-deploy" # the connection's name
}
