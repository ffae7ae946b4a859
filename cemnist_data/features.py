"""The ``datasets`` features of every CEMNIST split (one schema for all configs). Imports ``datasets``."""

from __future__ import annotations

from datasets import ClassLabel, Features, Image, List, Value

__all__ = ["FEATURES", "DIGIT_NAMES"]

DIGIT_NAMES = [str(d) for d in range(10)]

FEATURES = Features(
    {
        "image": Image(mode="L"),  # 60x60 uint8: sum of the digit intensities, clipped to 255
        # masks are palette PNGs whose pixel values are the label ids (0 bg, d+1 digit d); no `mode`, so
        # decoding keeps Pillow mode "P" and numpy.asarray(image) gives the ids (mode="L" would convert
        # the palette colours to luminance)
        "mask": Image(),  # the label map this config's protocol gives
        "full_mask": Image(),  # every digit labelled d+1
        "task": Value("int16"),  # task of this config (-1 in `joint`)
        "digits": List(ClassLabel(names=DIGIT_NAMES)),  # digit of each placed MNIST image, in placement order
        "mnist_split": Value("string"),  # MNIST file the digits come from: "train" or "test"
        "mnist_index": List(Value("int32")),  # index of each digit in that MNIST file
        "top": List(Value("int16")),  # top-left row of each digit
        "left": List(Value("int16")),  # top-left column of each digit
        "uid": Value("string"),  # "<stream>/<index>": identical in every config that holds the image
    }
)
