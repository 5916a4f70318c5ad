from .surrogate_iou_metric import SurrogateIoUMetric

__all__ = ['SurrogateIoUMetric']
