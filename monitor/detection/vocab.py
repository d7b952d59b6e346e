"""The words that carry meaning on an immigration page, in English and French: statuses (open, closed,
paused, "now accepting"), policy terms and their labels, intake nouns, deadlines, site and service notices,
the publisher's edit stamps. Data and compiled patterns only; `meaning` reads with them.
"""

from __future__ import annotations

import re

#: Open, closed, paused, "now accepting": the status consultants act on the same day. Each alternative
#: needs a verb or an intake noun, so "open work permit" is not a status.
STATUS = re.compile(
    r"\b(?:is|are|remains?|has\s+been|have\s+been|will\s+be|was|were|now|currently|temporarily)\s+"
    r"(?:now\s+|currently\s+|temporarily\s+)?(?:open|closed|paused|suspended|re-?opened|on\s+hold)\b"
    r"(?!\s+work\s+permit)"
    r"|\b(?:now|currently|no\s+longer|not|stopped|resumed?|will\s+(?:begin|start|stop|resume))\s+"
    r"(?:be\s+)?accepting\b"
    r"|\b(?:intakes?|applications?|registrations?|submissions?|program|stream|portal|EOI|expressions?\s+of"
    r"\s+interest|draws?)\s+(?:period\s+)?(?:is\s+|are\s+|has\s+|have\s+|will\s+)?(?:been\s+)?(?:now\s+)?"
    r"(?:opened|open|closed|paused|suspended|re-?opened|re-?opens?|opens?|closes?)\b(?!\s+work\s+permit)"
    r"|\b(?:open|closed|re-?opens?|opens|closes)\s+(?:to|for)\s+(?:new\s+)?(?:applications|submissions|"
    r"registrations|expressions\s+of\s+interest|candidates|profiles|intake)\b"
    r"|\b(?:intake|applications?|registration|portal)\b[^.]{0,40}\b(?:opens?|closes?|re-?opens?)\s+(?:on|at)\b"
    r"|\b(?:no\s+longer|not|stopped)\s+(?:being\s+)?accepted\b"
    r"|\b(?:cap|allocation|limit|quota)\b[^.]{0,40}\b(?:has|have|is|was)\s+(?:been\s+)?reached\b"
    r"|\breached\s+(?:its|the|our)\s+[^.]{0,30}\b(?:cap|allocation|limit|quota)\b"
    r"|\b(?:status|intake(?:\s+status)?)\s*[:|–-]\s*(?:open|opened|closed|paused|suspended|on\s+hold|full|"
    r"re-?opened)\b",
    re.IGNORECASE,
)
#: The same in French ("le volet est fermé", "les demandes sont suspendues", "nous n'acceptons plus",
#: "statut : ouvert"), searched only in a text that shows one of `_FR_STATUS_MARKS`: English pages do not pay
#: for it.
STATUS_FR = re.compile(
    r"\b(?:est|sont|demeurent?|reste|restent|a\s+été|ont\s+été|sera|seront|maintenant|temporairement)\s+"
    r"(?:maintenant\s+|temporairement\s+)?(?:ouvert|fermé|suspendu|rouvert|réouvert|en\s+pause)e?s?\b"
    r"|\bn['’](?:acceptons|accepte|acceptent|accepterons)\s+plus\b"
    r"|\b(?:acceptons|accepte|acceptent)\s+(?:maintenant|désormais|de\s+nouveau)\b"
    r"|\bne\s+(?:sont|seront)\s+plus\s+acceptée?s?\b"
    r"|\b(?:plafond|quota|limite)\b[^.]{0,40}\b(?:a|est)\s+été\s+atteinte?\b"
    r"|\b(?:statut|état)\s*[:|–-]\s*(?:ouvert|fermé|suspendu|en\s+pause|complet)e?s?\b",
    re.IGNORECASE,
)
_FR_STATUS_MARKS = ("é", "ouvert", "n'accept", "n’accept", "statut", "acceptons", "accepte ")
#: What a status is about: without one of these in its sentence, "is closed" is not a program's status.
INTAKE_NOUN = re.compile(
    r"\b(?:intakes?|applications?|registrations?|submissions?|programs?|programmes?|streams?|categor(?:y|ies)|"
    r"pilots?|portal|EOIs?|expressions?\s+of\s+interest|draws?|nominations?|invitations?|profiles?|pool|"
    r"caps?|quotas?|allocations?|window|period|candidates|applicants"
    r"|demandes?|inscriptions?|programmes?|volets?|catégories?|projets?\s+pilotes?|portail|déclarations?\s+"
    r"d['’]intérêt|invitations?|candidats?|demandeurs?|plafonds?|période|tirages?|rondes?)\b",
    re.I,
)
#: Policy terms by class, in order of precedence for the headline's label.
POLICY_TERMS: list[tuple[str, str, re.Pattern[str]]] = [
    (
        "fee",
        "Fee payment",
        re.compile(
            # "Visa" alone is the Start-up Visa or a visitor visa: a card brand only beside another one
            r"\bVisa\b(?=[^.]{0,30}\b(?:Mastercard|American\s+Express|Amex)\b)|"
            r"\b(?:fees?|payments?|pay|payable|credit\s+cards?|debit|Mastercard|American\s+Express|refunds?|"
            r"non-refundable)\b",
            re.I,
        ),
    ),
    (
        "intake",
        "Intake",
        re.compile(r"\b(?:intakes?|caps?|quotas?|allocations?|spots|nominations?|invitations?)\b", re.I),
    ),
    (
        "form",
        "Form",
        re.compile(
            r"\b(?:forms?|IMM\s?\d{4}|checklists?|consent|declaration|questionnaire|template)\b", re.I
        ),
    ),
    (
        "representative",
        "Representatives",
        re.compile(
            r"\b(?:representatives?|lawyers?|consultants?|RCICs?|CICC|paralegals?|notar(?:y|ies)|"
            r"authori[sz]ed\s+(?:representative|agent)|good\s+standing)\b",
            re.I,
        ),
    ),
    (
        "processing",
        "Processing time",
        re.compile(r"\b(?:processing\s+times?|processed\s+(?:within|in)|service\s+standard)\b", re.I),
    ),
    (
        "requirement",
        "Requirement",
        re.compile(
            r"\b(?:must|required?|requirements?|mandatory|eligib\w*|ineligible|minimum|at\s+least|NOC|"
            r"TEER|CLB|NCLC|language\s+tests?|IELTS|CELPIP|TEF|TCF|PTE|educational?\s+credential\s+"
            r"assessments?|ECA|need\s+to|needs\s+to|have\s+to|has\s+to|shall|no\s+longer|only\s+if|"
            r"not\s+accepted|prohibited|exempt\w*|occupations?|job\s+offer|work\s+experience|"
            r"proof\s+of\s+funds|settlement\s+funds)\b",
            re.I,
        ),
    ),
    (
        "documents",
        "Documents",
        re.compile(r"\b(?:documents?|submit\w*|upload\w*|e-?mail|send|mail\s+to|courier)\b", re.I),
    ),
    (
        "date",
        "Deadline",
        re.compile(r"\b(?:deadlines?|expir\w+|effective|no\s+later\s+than|valid\s+until)\b", re.I),
    ),
]
LABELS = {cls: label for cls, label, _ in POLICY_TERMS}
#: A duration or date that is a time limit: "submit … within 30 days", "no later than March 1".
DEADLINE = re.compile(
    r"\b(?:deadlines?|within|no\s+later\s+than|before|by|expir\w+|valid\s+(?:until|for)|"
    r"to\s+(?:submit|apply|respond|provide|send|upload))\b",
    re.I,
)
#: A banner about the website rather than the program: low whatever facts it holds.
SITE_NOTICE = re.compile(
    r"\b(?:maintenance|outage|downtime|unavailable|website|web\s+site|browser|cookies?|scam|fraud\w*|"
    r"survey|feedback|holiday|technical\s+(?:issue|difficult)\w*|system\s+upgrade|offices?\s+(?:will\s+be\s+)?"
    r"closed|phone\s+lines?|call\s+cent(?:re|er)|due\s+to\s+(?:a\s+)?high\s+(?:volumes?|demand)|"
    r"(?:we|our\s+office)\s+(?:are|is)\s+(?:currently\s+)?experiencing)\b",
    re.I,
)
#: A notice in the page's own content that the program's online system will be down (with its dates): a
#: consultant plans submissions around it. A banner of the site's (notice-marked) stays a low site notice.
SERVICE_NOTICE = re.compile(
    r"\b(?:online\s+)?(?:application|applications|submission|registration|e-?services?|portal|online|"
    r"account|payment|EOI)s?\s+(?:system|portal|service|site|platform|tool|form)s?\b[^.]{0,80}?"
    r"\b(?:unavailable|down|offline|out\s+of\s+service|not\s+(?:be\s+)?available|interrupted|closed\s+for\s+"
    r"maintenance|undergoing\s+maintenance)\b"
    r"|\b(?:unavailable|down|offline)\b[^.]{0,40}\b(?:application|online|submission|registration)\s+"
    r"(?:system|portal|service)\b",
    re.I,
)
#: The publisher's own stamp inside a sentence ("(last updated 5 July 2022)", "as of March 1"): a date that
#: says when the page was edited, not what the rules are.
UPDATE_STAMP = re.compile(
    r"\b(?:last\s+)?(?:updated|modified|reviewed|revised|refreshed)(?:\s+on)?\s*:?\s*$|\b(?:current\s+)?as\s+(?:of|at)\s*:?\s*$",
    re.I,
)
#: Columns of a results or statistics table: its numbers are results, not an intake.
RESULTS_WORDS = re.compile(
    r"\b(?:invited|invitations?\s+issued|issued|selected|drawn|ranked|results?|scores?|points|cut-?off|"
    r"lowest|minimum\s+score|received|approved|refused|processed|nominated|nominations?\s+issued|"
    r"candidates|statistics|total)\b",
    re.I,
)
_YEARISH = re.compile(r"^(?:\d{4}(?:\s*[/–-]\s*\d{2,4})?|fiscal|FY|\W)+$", re.I)

#: Facts whose change is a policy change (all but a bare number outside an intake context).
POLICY_FACTS = {
    "fee",
    "date",
    "duration",
    "teer",
    "noc",
    "exemption_code",
    "percentage",
    "wage",
    "form",
    "email",
    "count",
    "language",
}
FACT_HEADLINE = {
    "fee": "Fee",
    "date": "Date",
    "duration": "Duration",
    "teer": "TEER",
    "noc": "NOC",
    "exemption_code": "Exemption code",
    "percentage": "Percentage",
    "wage": "Wage",
    "form": "Form",
    "email": "E-mail",
    "count": "Number",
    "language": "Language level",
}
