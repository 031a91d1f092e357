"""Custom actions served by the action server (``python -m bot.runtime.action_server``)."""

from dialogue.actions.care import ActionCrisis
from dialogue.actions.fallback import ActionDefaultAskAffirmation, ActionTwoStageFallback
from dialogue.actions.language import ActionReadMessage
from dialogue.actions.plans import (
    ActionAcceptSettlement,
    ActionAskPlanOffer,
    ActionCreatePlan,
    ActionPayInFull,
    ValidatePaymentPlanForm,
)
from dialogue.actions.preferences import (
    ActionChangeChannel,
    ActionChangeLanguage,
    ActionOptOut,
    ActionSetContactTime,
    ActionWrongPerson,
)
from dialogue.actions.session import ActionSessionStart
from dialogue.actions.support import (
    ActionFlagHardship,
    ActionHandoff,
    ActionRecordCallback,
    ActionRecordDispute,
    ActionRecordPaymentClaim,
    ActionShareResources,
    ValidateAlreadyPaidForm,
    ValidateCallbackForm,
)
from dialogue.actions.verification import ActionDisclose, ActionRememberRequest, ValidateVerifyForm

__all__ = [
    "ActionAcceptSettlement",
    "ActionAskPlanOffer",
    "ActionChangeChannel",
    "ActionChangeLanguage",
    "ActionCreatePlan",
    "ActionCrisis",
    "ActionDefaultAskAffirmation",
    "ActionDisclose",
    "ActionFlagHardship",
    "ActionHandoff",
    "ActionOptOut",
    "ActionPayInFull",
    "ActionReadMessage",
    "ActionRecordCallback",
    "ActionRecordDispute",
    "ActionRecordPaymentClaim",
    "ActionRememberRequest",
    "ActionSessionStart",
    "ActionSetContactTime",
    "ActionShareResources",
    "ActionTwoStageFallback",
    "ActionWrongPerson",
    "ValidateAlreadyPaidForm",
    "ValidateCallbackForm",
    "ValidatePaymentPlanForm",
    "ValidateVerifyForm",
]
