"""TopKD CIFAR-100 reproduction suite: models, data, distillers, engine and stages."""
