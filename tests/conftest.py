pytest_plugins = ["tests.k8s.plugin", "tests.ray.plugin"]
