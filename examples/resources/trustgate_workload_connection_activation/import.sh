# An activation is imported by the connection's name.
terraform import trustgate_workload_connection_activation.deploy github-deploy
