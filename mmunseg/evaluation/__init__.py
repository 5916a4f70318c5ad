from .per_class_iou_metric import PerClassIoUMetric
from .surrogate_iou_metric import SurrogateIoUMetric

__all__ = ['PerClassIoUMetric', 'SurrogateIoUMetric']
