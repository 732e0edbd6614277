"""The Step Functions definitions (Amazon States Language) as plain dicts: CDK deploys them, moto runs them."""
