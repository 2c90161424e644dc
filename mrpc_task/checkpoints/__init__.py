"""Pretrained encoders: restoring them (checkpoints, TF Hub), converting Hugging Face and TF1
BERT checkpoints to Model Garden's layout, and the cache of conversions."""
