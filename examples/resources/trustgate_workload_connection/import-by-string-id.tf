import {
  to = trustgate_workload_connection.deploy
  id = "github-deploy" # the connection's name or id
}
