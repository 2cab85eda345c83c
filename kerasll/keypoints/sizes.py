"""The pose network's resolutions, importable without Keras.

`kerasll project init --task keypoints` checks image sides against them
before anything loads TensorFlow; the model and the heatmaps read them here.
"""

# Heatmaps are at 1/STRIDE of the input (the hourglass' stem).
STRIDE = 4
# The hourglass halves its input this many times below the stem.
DEPTH = 3
# Input sides must be multiples of this: the stem's 1/4, then the halvings.
SIDE_MULTIPLE = STRIDE * 2**DEPTH
