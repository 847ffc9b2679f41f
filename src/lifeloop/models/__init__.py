"""Models (模型体系): statistical models fitted on the bank's own data; today customer lifetime value (客户终身价值)."""
