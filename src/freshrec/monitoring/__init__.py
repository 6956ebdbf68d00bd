"""Monitoring: input drift against a reference window, and online recommendation quality.

``InputDriftMonitor`` compares recent events with the ones the model was trained
on; ``OnlineQualityMonitor`` checks served lists against what users did next;
``register_monitoring_gauges`` exports both reports to Prometheus.
"""

from freshrec.monitoring.distances import DistributionDrift, js_distance, psi
from freshrec.monitoring.drift import DriftThresholds, InputDriftMonitor
from freshrec.monitoring.prometheus import MonitoringGauges, register_monitoring_gauges
from freshrec.monitoring.quality import OnlineQualityMonitor

__all__ = [
    "DistributionDrift",
    "DriftThresholds",
    "InputDriftMonitor",
    "MonitoringGauges",
    "OnlineQualityMonitor",
    "js_distance",
    "psi",
    "register_monitoring_gauges",
]
