"""Risk classification of upstream tools, and the starter policy suggested from it.

`classify(tool) -> Risk` is pure: the gateway (audit events, /admin/tools), definition pinning and
the console use it on the definitions the upstreams list. `suggest.py` turns a classified
catalog into policy files an operator reviews.
"""

from gateway.risk.classify import HELD, Risk, classify, classify_json, risk_change, risk_label
from gateway.risk.evidence import SEVERITY, Evidence, RiskClass

__all__ = [
    "HELD",
    "SEVERITY",
    "Evidence",
    "Risk",
    "RiskClass",
    "classify",
    "classify_json",
    "risk_change",
    "risk_label",
]
