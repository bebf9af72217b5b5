"""Preprocessing, query selection and the numpy-in/numpy-out Detector."""

from mhr2_ros.inference.results import FrameResult, Human

__all__ = ["Detector", "FrameResult", "Human"]


def __getattr__(name):
    # Lazy: importing the results types must not build torch models or import anny.
    if name == "Detector":
        from mhr2_ros.inference.detector import Detector

        return Detector
    raise AttributeError(name)
