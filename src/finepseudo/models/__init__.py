"""Models stage (workflow/rules/train.smk): the video encoder f_E (architectures, augmentation, supervised and
self-supervised training, several GPUs), its evaluation, and the training / evaluation steps.
"""
