"""Self-supervised pretraining on unlabeled footage: curating it, sharding it, and the masked-autoencoder backbone."""
