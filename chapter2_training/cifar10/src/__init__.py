"""cifar10: the image training pipeline (preprocess → train → evaluate → quantize → register)
that produces every digits_resnet* model of the repository (SPEC 1.2)."""
