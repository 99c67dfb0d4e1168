terraform {
  # Built-in functions only: no provider, so this module plans, applies and
  # tests offline.
  required_version = ">= 1.9" # validations that refer to other variables
}
