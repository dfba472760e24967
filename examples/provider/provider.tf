terraform {
  required_providers {
    trustgate = {
      source = "trustgate/trustgate"
    }
  }
}

# The platform workspace uses a devops_admin key, the security workspace a
# security_admin key. Keep the key out of the configuration: pass it as a
# sensitive variable or set TRUSTGATE_API_KEY.
variable "trustgate_api_key" {
  type      = string
  sensitive = true
}

provider "trustgate" {
  endpoint = "https://trustgate.example.com" # or TRUSTGATE_ENDPOINT
  api_key  = var.trustgate_api_key           # or TRUSTGATE_API_KEY
}
