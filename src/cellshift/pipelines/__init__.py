"""End-to-end runs that chain every layer: a whole screen analysis and contrastive fine-tuning on a screen."""
