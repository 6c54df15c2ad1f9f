"""Annotated dependency aliases for routes: the lifespan's objects, never globals."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from gateway.state import GatewayState


def get_gateway(request: Request) -> GatewayState:
    state: GatewayState = request.app.state.gateway
    return state


GatewayDep = Annotated[GatewayState, Depends(get_gateway)]
