"""The networks of the lectures, built from :mod:`scratchface.nn` modules, each reproducing its paper's table.

==============  ==================================================  =================
name            network                                             input (H x W x C)
==============  ==================================================  =================
``'nn1'``       FaceNet NN1, Zeiler & Fergus + 1x1 convs, maxout    220 x 220 x 3
``'nn2'``       FaceNet NN2, inception with L2 pooling              224 x 224 x 3
``'nn3'``       NN2 at 160                                          160 x 160 x 3
``'nn4'``       NN2 at 96                                           96 x 96 x 3
``'nns1'``      FaceNet NNS1, mini inception (our version)          165 x 165 x 3
``'nns2'``      FaceNet NNS2, tiny inception (our version)          140 x 116 x 3
``'vgg_face'``  VGG-Face, 16 weight layers, 2622-way classifier     224 x 224 x 3
``'deepface'``  DeepFace, C1 M2 C3 L4-L6 (locally connected) F7 F8  152 x 152 x 3
==============  ==================================================  =================

::

    from scratchface.models import build_model
    net = build_model("nn2", input_size=224, embedding_dim=128, rng=0)
    net.print_summary()                     # FaceNet table 2
    net = build_model("nn4", width_divisor=8, dtype="float64")   # a small copy for gradchecks

A DREAM block (:mod:`scratchface.models.dream`) attaches to any of the
embedding networks: ``DreamNetwork(build_model('nn4'))``. The MTCNN nets, which
run with trained weights, are in :mod:`scratchface.models.mtcnn_nets`.
"""
from __future__ import annotations

from .._validation import check_choice
from .deepface import deepface, deepface_descriptor
from .dream import DreamBlock, DreamNetwork, attach_dream, yaw_gate
from .facenet import FaceNetwork, nn1, nn2, nn3, nn4, nns1, nns2
from .vgg_face import vgg_face

__all__ = ["build_model", "list_models", "MODELS", "FaceNetwork", "nn1", "nn2", "nn3", "nn4", "nns1", "nns2",
           "vgg_face", "deepface", "deepface_descriptor", "DreamBlock", "DreamNetwork", "attach_dream", "yaw_gate"]

#: Builders by name; each returns a :class:`FaceNetwork`.
MODELS = {"nn1": nn1, "nn2": nn2, "nn3": nn3, "nn4": nn4, "nns1": nns1, "nns2": nns2,
          "vgg_face": vgg_face, "deepface": deepface}


def list_models():
    """The names :func:`build_model` knows, in the order of the lectures."""
    return list(MODELS)


def build_model(name, **kwargs):
    """Build a network of the lectures by name.

    Parameters
    ----------
    name : str
        One of :func:`list_models` (case-insensitive; ``'vgg-face'`` works too).
    **kwargs
        Passed to the builder: ``input_size``, ``embedding_dim`` (FaceNet),
        ``num_classes`` (VGG-Face, DeepFace), ``width_divisor``, ``rng``,
        ``dtype``, ``init``...

    Returns
    -------
    FaceNetwork

    Raises
    ------
    ValueError
        An unknown name (the message lists the known ones).
    """
    key = name.lower().replace("-", "_") if isinstance(name, str) else name
    check_choice(key, "name", tuple(MODELS))
    return MODELS[key](**kwargs)
