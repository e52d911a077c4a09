"""What a panelist may say: each finished sentence judged by its words and by its meaning.

Words catch what has a form (an assistant's preamble, a speaker label, a score, an instruction line
quoted back); meaning catches what has none. The grader's sentence embedder (MiniLM, a few ms a
sentence) compares each sentence with what the turn is about (the question decided on, or the weak area
of a follow-up) and with what it must never say: a hidden priority, the answer the question is
looking for (its key points and strong exemplars), a verdict on the candidate's answer. A sentence that
asks must ask the question decided on; one that does not may react, introduce or push back, never answer.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from coach.wording import learned
from coach.wording.sentences import asks, split

if TYPE_CHECKING:
    from coach.grading.embedder import Embedder

# ---------------------------------------------------------------- what has a form

_OUT_OF_ROLE = re.compile(
    r"\bas an ai\b|\bi(?:'m| am) (?:just |only |merely )?an? (?:ai|artificial intelligence|language model|"
    r"virtual assistant|chatbot|assistant)\b|\bas an? (?:large )?language model\b|\b(?:smollm|chatgpt)\b|"
    r"^\W*(?:sure|certainly|of course|absolutely|okay|ok)[,!.]?\s+(?:here(?:'s| is)|i(?:'ll| will| can))\b|"
    r"\bhere(?:'s| is) (?:how|what|a|the|my|one)\b.{0,60}?\b(?:might|would|could|should) (?:ask|say|put|open|"
    r"phrase|word|start|begin|introduce|sound|respond|reply|voice|frame)\b|"
    r"^\W*(?:sure|certainly|of course|absolutely|gladly|happy to help)\W*$|^\W*here(?:'s| is)\b[^:]{0,80}:\s*$|"
    r"\b(?:opening|closing) (?:line|question|remarks?)\b|^\W*\(?end of (?:the )?(?:interview|panel|conversation)\b|"
    r"\bhere(?:'s| is) (?:the|a|my) (?:question|version|rephras\w*|reword\w*|response|reply|goodbye|summary)\b|"
    r"\b(?:rephrased|reworded|paraphrased)\b|\bin (?:my|your|his|her) own (?:voice|words)\b|"
    r"\b(?:stay(?:ing)?|in|out of|break(?:ing)?) character\b|(?:^|\s)\(?note:|\bnote to (?:the )?(?:user|reader|self)\b|"
    r"\bthis turn\b|\bi hope (?:this|that) helps\b|\bas (?:requested|instructed)\b|"
    r"\b(?:the interviewer|dr\.? marchal|ines|marcus|sofia) (?:might|would|could) (?:ask|say)\b|"
    r"\bi (?:kept|have kept|will keep) (?:it|this) (?:to|under|within)\b|\b(?:kept|keeping|keep) (?:it|this|that) to "
    r"(?:one|two|three)\b|\bin at most (?:one|two|three)\b|"
    r"\b(?:one|two|three) sentences?,? as (?:requested|instructed|asked)\b|"
    r"^\W*\((?=[^()]*(?::|\bgap\b|\bprob(?:e|ing)\b|\bnote\b|\bturn\b|\bin character\b))[^()]{1,160}\)",
    re.I | re.M)
_PREAMBLE = re.compile(r":\s*\n\s*$|:\s*$")  # a sentence that only announces what follows ("Here it is:")
_STAGE = re.compile(r"(?:^|\s)(?:\*[^*\n]{1,160}\*|\[[^\]\n]{1,80}\]|\((?=[^()\n]{0,160}\b(?:she|he|her|his|smiles?|"
                    r"nods?|pauses?|laughs?|leans?|sighs?|looks?|glances?|adjusts?|stands?|closes?|raises?|frowns?|shrugs?|grins?|"
                    r"chuckles?|taps?|scribbles?|jots?|eyebrows?|checks (?:her|his) notes|dr\.? marchal|marcus|"
                    r"sofia)\b)[^()\n]{1,160}\))", re.I)
# a sentence in brackets or asterisks, or one that opens with a parenthesis: a note or a stage direction
# whatever its words ("(Pushback delivered; awaiting the answer.)"); none of the 461 good voicings seen has one
_ASIDE_NOTE = re.compile(r"^[\W\d]{0,3}[(\[*]\s*\w|\[[^\]\n]{3,}\]|(?:^|\s)\*\w[^*\n]*\*")
_LEAK = re.compile(
    r"\bmy (?:instructions?|brief|script|persona|role card|hidden|private|secret|real agenda)\b|"
    r"\b(?:i was|i've been|i have been|i am|i'm) (?:told|instructed|asked|supposed|meant) to\b|"
    r"\bhidden priorit|\bprivately\b|\bsecretly\b|\bnever (?:say|reveal)\b|\bstay in role\b|"
    r"\byour turn\b|\bas planned\b|\bgap \(\d\)|\bprobe (?:gap|one of these)\b|\bunless you follow up\b|"
    r"\(quoted|\bnot instructions to you\b|\bgrader:|\bthe panel'?s record\b|\bturn by turn\b|"
    r"\bwhat i(?:'m| am) (?:really|actually|secretly) (?:looking for|testing|trying to|after)|"
    r"\bwhat i (?:really|actually|secretly) want to (?:know|find out|see|test)|\bthe real (?:test|question) (?:here )?is\b|"
    r"\b(?:just between us|between you and me|off the record)\b|"
    r"\bi(?:'ll| will|'m| am)? ?(?:be |\w+ly )?"
    r"(?:checking|watching|testing|listening|looking|judging) (?:for )?(?:whether|if|how you|to see)\b|"
    r"\bwhat i(?:'m| am) (?:checking|watching|testing|listening for|judging)\b|"
    r"\bi care (?:a lot |most |deeply )?about whether\b|\bfair warning\b|\bi(?:'ll| will) be (?:honest|upfront) "
    r"(?:about|with you about) what i\b|\bon purpose to see\b|"
    r"\bpart of what i(?:'m| am) (?:looking|checking|watching)|\brecord format\b|\bgrader (?:line|score)s?\b|"
    r"\bquoted answers?\b", re.I)
# what a panelist is testing, said aloud: a hidden priority whatever words it uses
_TESTING = re.compile(
    r"\bseeing (?:whether|if|how) you\b|"
    r"\b(?:part of|the point of) (?:this|the|today'?s) (?:round|interview|panel|exercise|conversation) is\b|"
    r"\bi (?:want|need|'d like|would like|wanna) to see (?:whether|if|how) you (?:keep|stay|hold|cave|fold|stand|"
    r"handle|push|go along|give in|cope|react|defend|stick)|"
    # "... to see whether you keep your cool": in 22 bad voicings of the seen sets, and in no good one
    r"\bto see (?:whether|if) you\b|\bto see how you (?:handle|react|cope|respond|deal|take)\b|"
    r"\bi(?:'ll| will| am going to|'m going to) push back "
    r"(?:hard )?on (?:whatever|anything|everything) you\b", re.I)
# intent to test the candidate ("to see whether you cave"): a hidden priority when its meaning is near one
_INTENT = re.compile(r"\bto see (?:whether|if|how) you\b|"
                     r"\b(?:see|know|find out|learn) (?:whether|if) you(?:'ll| will|'d| would)? "
                     r"(?:cave|fold|stand|hold|keep|stay|let|give in|push back|agree|bend)|\bwhether you (?:cave|fold|"
                     r"stand firm|hold (?:the|a) line|keep your|stay calm|let sales|give in|bend|agree with whoever)", re.I)
_GRADE = re.compile(
    r"\b(?:great|good|excellent|strong|solid|fantastic|terrific|brilliant|perfect|weak|poor|vague|thin|shallow|"
    r"impressive|wonderful|nice|superb|decent|incomplete|incorrect|wrong|correct|thoughtful|thorough|clear|"
    r"compelling|insightful|well-structured|weak|generic|fluffy)\s+(?:answer|response|point|job|start|work|"
    r"explanation|answers|responses|thinking|framing|reasoning|instinct|analysis|story|example|plan)\b|"
    r"\b(?:isn'?t|is not|wasn'?t|was not|not) (?:really |quite |exactly )?(?:an answer|acceptable|good enough|"
    r"convincing|what i asked)\b|\bexactly the kind of\b|\b(?:i|we) (?:like|love) to hear\b|"
    r"\b(?:you were|you're|you are)\s+(?:a |an )?(?:really |very |quite |pretty |a bit |too |rather |absolutely |"
    r"not quite )?(?:great|excellent|vague|weak|impressive|wrong|spot on|generic|brilliant|fantastic|superficial|"
    r"convincing|unconvincing)\b|"
    r"\b(?:that was|that's|that is|it was|this was)\s+(?:a |an )?(?:really |very |quite |"
    r"pretty |a bit |too |rather |exactly |absolutely |not quite |not )?(?:great|excellent|strong|solid|vague|weak|"
    r"thin|shallow|impressive|wrong|spot on|right|correct|incorrect|generic|hand-?wavy|fluffy|off|unclear|"
    r"brilliant|perfect|fantastic|incomplete|superficial|convincing|unconvincing|acceptable|unacceptable)\b|"
    r"\byou nailed\b|\bwell done\b|\bspot on\b|\bnailed it\b|\b(?:\d(?:\.\d)?|one|two|three|four|five|ten) "
    r"(?:out of|/) ?(?:5|10|five|ten)\b|\b\d(?:\.\d)?/(?:5|10)\b|\bi'?d (?:give|score|rate|grade)\b|"
    r"\b(?:you did|you performed|you interviewed|you handled (?:it|that|this)) (?:really |very |quite )?"
    r"(?:well|great|good|brilliantly|poorly|badly)\b|\b(?:strong|great|excellent|impressive|weak) "
    r"(?:candidate|interview|performance|showing|session)\b|\b(?:move|moving) (?:you )?forward\b|"
    r"\byou(?:'ve| have) (?:passed|impressed|got the)\b|\bi (?:like|love|liked|loved) (?:that|this|your|how)\b|"
    r"\b(?:not|wasn'?t|isn'?t|n't) (?:an? )?(?:great|good|strong|convincing|acceptable|serious) (?:answer|response)\b|"
    r"\b(?:answer|story|example|explanation|framing|pitch|response) (?:was|is|sounded|felt) (?:\w+ )?(?:weak|vague|thin|"
    r"strong|great|good|solid|shallow|generic|off|poor|excellent|impressive|convincing|unconvincing)\b|"
    r"\bexactly what i (?:hoped|wanted|was hoping|needed|like) to hear\b|\bone of the (?:\w+est|best|worst|most \w+) "
    r"(?:\w+ )?(?:we'?ve|i'?ve|i have|we have) (?:heard|seen|had)\b|\brookie\b|"
    # a statement whose subject is the candidate's answer, with a predicate: a verdict on it
    r"\b(?:that|your|this) (?:last |first |earlier |previous )?(?:\w+ )?(?:answer|response|reply|story|pitch)\b"
    r"(?: [\w']+){0,4}? (?:was|is|'s|sounded|sounds|felt|feels|seemed|seems|won'?t|doesn'?t|didn'?t|isn'?t|wasn'?t|would|"
    r"will|reads?|came across)\b(?! (?:about|on|from|that you|mostly|focused|centred|centered|useful|where|what|"
    r"the (?:one|part)))|"
    r"\btells? me nothing\b|\bnot (?:a |an )?(?:real |actual |serious |proper )answer\b|"
    r"\b(?:is|was|'s|are|were) (?:simply |just |frankly |plainly |flat-?out |flat out |completely |totally |entirely |"
    r"clearly |obviously |definitely |honestly |dead |badly )(?:wrong|incorrect|false|mistaken|off base|backwards|"
    r"right|correct)\b|\bthat'?s the (?:kind of |sort of )?(?:answer|response) (?:that|which) (?!i asked)|"
    r"\b(?:that|your|this) (?:answer|response|reply) (?:would|will|won'?t|wouldn'?t|could) (?:lose|get|cost|kill|"
    r"sink|win|impress|fail|pass|land|work)\b|\byou (?:clearly |really |certainly |definitely )?(?:finished|started|"
    r"came across|sounded|seemed|ended|did) (?:much |a lot |far |way |so |very |really )?(?:stronger|weaker|better|"
    r"worse|strong|weak|great|confident|shaky|nervous|lost)\b|"
    r"\b(?:a|an) (?:weak|poor|vague|shaky|great|strong|solid) starting point\b|"
    r"\bisn'?t really (?:a plan|an option|an answer)\b|"
    r"\bthat(?:'s| is) not (?:quite )?(?:it|right|correct|what i)\b|\bexactly right\b|\bthat misses\b|"
    r"\byou (?:missed|forgot|overlooked|failed to)\b|\b(?:missed|forgot) (?:the|a|an|to)\b", re.I)
_SCORE = re.compile(r"\b\d(?:\.\d+)?\s*/\s*5\b|\bscor(?:ed|es|ing)?\s+(?:of\s+|a\s+)?\d", re.I)
_DECISION = re.compile(r"\b(?:offer|hire|hired|hiring decision|you got|the job is)\b", re.I)
_LABEL = re.compile(r"(?:^|\n)\s*[*_\"]*([A-Z][\w.]*(?: [A-Z][\w.]*){0,3})[*_\"]*\s*:\s", re.M)
_AS_CANDIDATE = re.compile(
    r"\bas (?:the|a) candidate\b|\bif i were (?:the|a|you|in your)\b[^?]*[.!]\s*$|\bmy answer (?:would be|is)\b|"
    r"\bhere(?:'s| is) (?:how|what) i(?:'d| would)\b|\bi(?:'d| would) (?:start|begin) by\b|"
    r"\bthe (?:right|correct|best|short) answer (?:is|would be)\b|\bthe answer (?:is|would be)\b|"
    r"\bmy (?:own )?answer\s*[:—–-]|\b(?:a|the) (?:good|strong|great|right|ideal|model) (?:answer|response) "
    r"(?:would|should|will|might) (?:say|be|include|mention|cover|start|name)\b|"
    r"\bwhat i(?:'d| would) (?:look at|check|do|try|want to see) first (?:is|would be)\b|"
    r"\blet me answer (?:it|this|that)\b|\b(?:i'?ll|let me) (?:go first|start us off|give you my (?:own )?answer)\b", re.I)
_LEADING = re.compile(r",\s*(?:right|correct|no|yes|surely|yeah)\s*\?\s*$|"
                      r"\b(?:wouldn'?t|shouldn'?t|couldn'?t|don'?t|doesn'?t|isn'?t|aren'?t|won'?t) (?:you|we|it|that|"
                      r"they|this) (?:rather |just |first |simply )?\w+|"
                      r"^\W*(?:\w+[,.]\s+){0,2}(?:would|should|will|could|can|do|does|is|are|did) "
                      r"(?:you|we|they|it|that|this) (?:first |just |simply |start by |begin by )\w+|"
                      r"\b(?:wouldn'?t it be|shouldn'?t (?:you|we)|isn'?t it (?:true|better|the case)|"
                      r"don'?t you think|have you (?:considered|thought about)|did you (?:consider|think about)|"
                      r"what about (?:\w+ing)|why not (?:just )?\w+|couldn'?t (?:you|we) (?:just )?)\b", re.I)
# a yes/no question proposes its own answer ("Would you offer them reserved throughput?"): a give-away when
# it is closer to the answer than to the question
_YES_NO = re.compile(r"^\W*(?:(?:ok(?:ay)?|so|and|but|right|now|then|next one|quick one)[,.:]?\s+)*(?:would|should|will|"
                     r"could|can|do|does|did|is|are|was) (?:you|we|they|it|that|this|the)\b", re.I)
# an aside inside a question that says what it is looking for ("— basically a ring buffer that ...")
_ASIDE = re.compile(r"(?:[—–,;:(]|\s-)\s*(?:basically|essentially|i\.e\.|in other words|that is|meaning|which means|"
                    r"think|as in)\b,?\s*(.{12,})|"
                    r"(?:[—–,;:]|\s-)\s*((?:is it|was it|isn'?t it) (?:because|that|since|due to)\b.{12,})", re.I)
# a panelist proposing what it would do ("Personally I'd cap it at a million tokens"): the candidate's answer
_PROPOSES = re.compile(r"\b(?:personally,? )?i(?:'d| would) (?!like\b|love\b|want\b|be\b|push\b|need\b|ask\b|hear\b|"
                       r"say that\b|rather hear\b|expect (?:you|a|an|the candidate|some|more|to hear)\b|imagine\b|"
                       r"guess\b|assume\b|argue the\b|question\b|challenge\b|disagree\b|push\b|pick up\b|"
                       r"start with (?:a|an|the|one|something) (?:question|scenario|case|quick)|stay (?:on|with)\b|"
                       r"keep (?:it|this|that) (?:short|brief|simple|in mind)\b)[a-z]+\b", re.I)
_TELLS = re.compile(r"\b(?:obviously|of course|clearly|hint:?),? you(?:'d| should| would| need to| lead| want| just)\b|"
                    r"\bhint\s*[:—–-]|\bspoiler\b|\bclue\s*:|,\s*(?:of course|obviously|naturally)\s*[.!]?\s*$|"
                    r"^\W*(?:of course|obviously|clearly),|\bthe (?:obvious|right|correct|real) (?:move|answer|fix|thing)"
                    r" (?:is|would be|here is)\b|"
                    r"(?:^|[-—,:]\s*)(?:and |but |just )?remember,? (?:that |only |you |the )", re.I)
# a hint in a statement ("you'd check the gradient norms"), or the panelist's own first step
_HINT = re.compile(r"\byou(?:'d| would| should| need to| have to| could just| want to) (?!be\b|have\b|agree\b|think\b|say\b)"
                   r"[a-z]+|\bmy (?:first |own )?(?:step|move|answer|approach|instinct|recommendation|fix) would be\b", re.I)
_NEW_TOPIC = re.compile(r"\b(?:different (?:angle|topic|question)|switching gears|change of (?:topic|subject)|new topic|"
                        r"moving on|let'?s move on|on another note|(?:talk|discuss|do|cover) \w+ instead|"
                        r"instead,? let'?s)\b", re.I)
# deferring the question for another one ("Let's do pricing in a minute. First, ...")
_DEFER = re.compile(r"\b(?:in a minute|in a moment|first,? (?:though|a quick one)|let'?s (?:park|put) (?:that|it|this)|"
                    r"hold that thought|instead(?! of)|setting \w+(?: \w+)? aside|leaving \w+(?: \w+)? aside)\b|"
                    r"\bbefore (?:anything else|we get (?:to|into) (?:that|it|this)|that|this|the big picture|"
                    r"the main (?:question|topic)|the real question)\s*[,—–-]", re.I)
# how a lead-in turns to the next question, acknowledges the last answer, or says something of it
_TRANSITION = re.compile(
    r"^\W*(?:(?:okay|ok|right|alright|all right|fine|good|thanks|thank you|noted|sure|got it|understood|fair enough|"
    r"great|cool|so|and|now|then|well|hm+|mm+)\b[\s,.;:—–-]*)*"
    r"(?:let me|let'?s|let us|now\b|next\b|here'?s|here is|quick one|one more|a (?:quick|different|new|last|final|related|"
    r"harder|concrete|practical|commercial|real|broader|technical|mechanism)|switching|shifting|moving|turning|back to|"
    r"step back|on to\b|onto\b|another\b|different\b|new (?:topic|one|question|scenario)|i (?:want|'d like|would like) to "
    r"(?:move|switch|turn|shift|go|change|bring|give|try|ask|put|stay|stick)|my next|this one|one from|i have (?:one|a)|"
    r"i'?ve got (?:one|a)|time for|last (?:one|question)|final (?:one|question)|staying|sticking|same|change of|"
    r"to (?:the|a) |over to|over on|i hear you\b|[\w-]+(?: [\w-]+)? aside\b|something\b)", re.I)
_ACK = re.compile(r"(?:got it|noted|thanks|thank you|understood|fair enough)\W*$", re.I)
_EVALUATIVE = re.compile(
    r"\b(?:not|no|never|nothing|great|good|love[ds]?|nailed|strong|weak|solid|wrong|correct|exactly|impressive|excellent|"
    r"brilliant|perfect|honestly|frankly|blunt|afraid|worr\w*|impress\w*|clean\w*|bold|best|worst|slogan|hope|wish|"
    r"spot on|fly|should|must|wants?|says|said|thinks|asked|checking|testing|watching|see (?:if|whether)|i'?d|i would|"
    r"i will|i'?ll|my)\b|n'?t\b", re.I)
_CONTENT = re.compile(r"[a-z][a-z'-]{3,}")
_STOP = set("that this with what your have about would there their they them then when which while where from into "
            "just like make more most only over some such than very will does tell give walk through want know "
            "think thing things really also been being could should were here well mean said says okay right "
            "thanks thank question questions answer answers let's lets need needs much many even each".split())


def _stem(word: str) -> str:
    for suf in ("ations", "ation", "ings", "ing", "ies", "ied", "ness", "ment", "ers", "ed", "es", "er", "ly", "s"):
        if word.endswith(suf) and len(word) - len(suf) >= 4:
            return word[: -len(suf)]
    return word


def stems(text: str) -> set[str]:
    return {_stem(w) for w in _CONTENT.findall(text.lower()) if w not in _STOP}


def _flat(text: str) -> str:
    return re.sub(r"\W+", " ", text.lower()).strip()


def _norm(word: str) -> str:
    return re.sub(r"[^\w']", "", word.lower()).strip("'")


def ngrams(texts: list[str], n: int) -> set[tuple[str, ...]]:
    out: set[tuple[str, ...]] = set()
    for t in texts:
        w = [x for x in (_norm(y) for y in t.split()) if x]
        out.update(tuple(w[i:i + n]) for i in range(len(w) - n + 1))
    return out


def quoted_run(sentence: str, grams: set[tuple[str, ...]], n: int) -> bool:
    w = [x for x in (_norm(y) for y in sentence.split()) if x]
    return any(tuple(w[i:i + n]) in grams for i in range(len(w) - n + 1))


# ---------------------------------------------------------------- what has a meaning

# Thresholds on cosine similarity (all-MiniLM-L6-v2), tuned on the "tune" part of tests/data/wording/.
ON_TOPIC = 0.40  # an asking sentence at least this close to what the turn is about asks the question (0.35 until
# round five: the lowest good voicing of the seen sets, with its lead-in, came at 0.43; 14 of 24 neighbouring questions
# under 0.40)
ON_TOPIC_CONTRADICT = 0.35  # a push-back comes at the question from a colleague's side
ON_TOPIC_FOLLOW_UP = 0.20  # a follow-up may come at the weak area from any side of the question and the answer
ON_TOPIC_WORDS = 0.34  # ... or shares this share of the question's content stems
SECRET = 0.40  # this close to a hidden priority says it aloud (no good sentence of the tune set came above 0.37)
SECRET_MARGIN = 0.10  # ... unless it is this much closer to what the turn is about (the question is near one)
SECRET_HARD = 0.55  # ... and never this close
SECRET_INTENT = 0.25  # ... or this close, said as an intent to test the candidate ("to see whether you cave")
DEFERRED = 0.5  # a question asked "first", before the one decided on, must be this close to it
DEFERRED_FOLLOW_UP = 0.35  # ... in a follow-up, to the weak area, the question or the answer
ANSWER = 0.62  # a statement this close to a key point or a strong answer gives the answer away
ANSWER_MARGIN = 0.04  # ... and closer to it than to the question itself
LEADING_ANSWER = 0.40  # a leading question ("Wouldn't it be better to ...") this close to the answer gives it away
VERDICT = 0.62  # this close to a verdict on the answer is grading aloud
LEAD_IN = 0.30  # a lead-in to a new question this far from it is a comment, not a set-up (see _lead_in)

VERDICTS = [
    "That was a great answer.", "Good answer, well done.", "That answer was vague and weak.",
    "You missed the key point there.", "That's exactly right.", "I'd score that answer three out of five.",
    "Honestly, that was not a strong response.", "Excellent, that's the answer I was hoping for.",
    "You did really well in this interview.", "That was a really impressive answer.",
]


@dataclass
class Turn:
    """Everything the checks of one turn compare a sentence with."""

    kind: str  # ask, follow_up, contradict, close (or note: the committee chair's summary)
    speaker: str  # the panelist's name
    role: str
    colleagues: list[tuple[str, str]]  # (name, role) of the other panelists
    topic: list[str]  # what an asking sentence must be about (the question decided on, or the weak area)
    secrets: list[str] = field(default_factory=list)  # hidden priorities
    answers: list[str] = field(default_factory=list)  # key points and strong answers: never to be stated
    read: list[str] = field(default_factory=list)  # what it read (instructions, news): never quoted at length
    heard: list[str] = field(default_factory=list)  # the candidate's words: quoted only briefly
    own: list[str] = field(default_factory=list)  # texts it may repeat freely (the written question, its name)
    frame: int = 0  # how many of `topic`, from the first, are the weak area (not the question itself)
    opener: bool = False  # the session's first question: the panelist introduces itself before it


@dataclass
class Verdict:
    ok: bool
    asks: bool
    why: str = ""
    scores: dict[str, float] = field(default_factory=dict)  # the similarities it was judged on


class Judge:
    """Judges finished sentences of one turn. Vectors of the fixed texts are computed once per turn."""

    READ_RUN = 6  # words in a row from its instructions or news: a quote, not its own words
    HEARD_RUN = 8  # words in a row from the candidate's answer: an echo

    def __init__(self, turn: Turn, embedder: Embedder | None) -> None:
        self.turn, self.embedder = turn, embedder
        if turn.kind == "note":  # a summary names what was said in a few words of it; a copy runs longer
            self.READ_RUN, self.HEARD_RUN = 9, 10
        own = [*turn.own, turn.speaker, turn.role]
        own_grams = ngrams(own, self.READ_RUN)
        self._read = ngrams(turn.read, self.READ_RUN) - own_grams
        self._heard = ngrams(turn.heard, self.HEARD_RUN) - ngrams(own, self.HEARD_RUN)
        self._topic_stems = stems(" ".join(turn.topic[:1] or [""]))
        self._vecs: dict[str, np.ndarray] | None = None

    @property
    def _vec(self) -> dict[str, np.ndarray]:
        """The fixed texts' vectors, made at the first sentence judged (a turn with no words costs nothing)
        and kept per text across turns: the same questions, priorities and answers come back all session."""
        if self._vecs is None:
            t = self.turn
            groups = {"topic": t.topic, "secrets": t.secrets, "answers": t.answers,
                      "verdicts": VERDICTS if t.kind != "note" else [],
                      "heard": [x for h in t.heard[-1:] for x in split(h)][:12]}
            assert self.embedder is not None
            self._vecs = {k: _vectors(self.embedder, g) for k, g in groups.items()}
        return self._vecs

    # ----------------------------------------------------------------

    def judge(self, sentence: str, before: str = "", asked: bool = False) -> Verdict:
        """`sentence`, given what already stood this turn (`before`) and whether it already asked."""
        s = sentence.strip()
        is_q = asks(s) if self.turn.kind not in ("note",) else False
        why = self._form(sentence, before, is_q)
        if why:
            return Verdict(False, is_q, why)
        scores: dict[str, float] = {}
        why = self._meaning(s, before, is_q, scores)
        if not why and self._lead_in(s, is_q, asked, scores):
            why = "comments instead of leading in"
        if not why and self.turn.kind != "note" and self.embedder is not None and \
                not any(_flat(s) in _flat(o) for o in self.turn.own):  # the app's own written words are trusted
            slip = scores["slip"] = learned.slip(self.signals(s, before, asked))
            if slip >= learned.threshold():
                why = "reads like a slip (learned)"
        return Verdict(not why, is_q, why, scores)

    def signals(self, sentence: str, before: str = "", asked: bool = False) -> np.ndarray:
        """What the learned check reads (`coach/wording/learned.py`): the sentence's vector, and how close it
        sits to what its turn is about, the hidden priorities, the answer key, a verdict and the candidate's
        last answer, with its place in the turn."""
        assert self.embedder is not None
        t = self.turn
        s = sentence.strip()
        v = _vectors(self.embedder, [s])[0]
        vec = self._vec

        def near(g: np.ndarray) -> float:
            return float((g @ v).max()) if len(g) else 0.0

        words = {w.strip(".,;:!?'\"()").lower() for w in s.split()}
        colleague = any(w.strip(".").lower() in words for name, _ in t.colleagues for w in name.split()
                        if len(w.strip(".")) > 2)
        own = any(w.strip(".").lower() in words for w in t.speaker.split() if len(w.strip(".")) > 2)
        ctx = [asks(s), asked, not before.strip(), near(vec["topic"]), near(vec["topic"][t.frame:t.frame + 2]),
               near(vec["secrets"]), near(vec["answers"]), near(vec["verdicts"]), near(vec["heard"]),
               min(len(s.split()), 40) / 20, colleague, own, t.opener,
               *(t.kind == k for k in learned.KINDS)]
        return np.concatenate([v, np.asarray(ctx, dtype=np.float32)])

    def _lead_in(self, s: str, is_q: bool, asked: bool, scores: dict[str, float]) -> bool:
        """Before a new question (not the opener: that one introduces itself), a sentence that does not ask
        may acknowledge ("Okay, noted."), turn to the question ("Let me give you a live one.") or set it
        up (close to the question in meaning). Anything else far from the question is a comment on the last
        answer, a colleague's view or an agenda: grading aloud and hidden priorities in their many wordings
        (measured on the seen corpus: 2 of 309 good lead-in sentences refused, 44 bad ones)."""
        if self.turn.kind != "ask" or self.turn.opener or is_q or asked or "own_topic" not in scores:
            return False
        if scores["own_topic"] >= LEAD_IN or _TRANSITION.match(s) or _ACK.search(s):
            return False
        names = {w.strip(".").lower() for w in self.turn.speaker.split() if len(w.strip(".")) > 2}
        if names & {w.strip(".,").lower() for w in s.split()}:
            return False  # it introduces itself
        return len(s.split()) > 5 or bool(_EVALUATIVE.search(s))

    def _form(self, sentence: str, before: str, is_q: bool) -> str:
        s = sentence.strip()
        t = self.turn
        if _OUT_OF_ROLE.search(s) or _STAGE.search(s) or _ASIDE_NOTE.search(s) or (
                _PREAMBLE.search(sentence) and not before.strip() and not asks(s)):
            return "out of role"
        if _LEAK.search(s):
            return "repeats its instructions"
        if _TESTING.search(s):
            return "says a hidden priority aloud"
        if self._read and quoted_run(s, self._read, self.READ_RUN):
            return "quotes what it was given to read"
        if self._heard and quoted_run(s, self._heard, self.HEARD_RUN):
            return "echoes the answer"
        others = {"candidate", "interviewer", "panelist", "assistant", "user", "system"} | {
            w.lower().strip(".") for name, _ in t.colleagues for w in name.split() if len(w.strip(".")) > 2}
        me = re.escape(t.speaker.replace("Dr. ", "").split()[0])
        if re.match(r"\W*[\w. ]{2,40}(?:\([^)]{1,40}\))?\W*:", s) and re.match(
                rf"\W*(?:dr\.?\s+)?(?:{me}|interviewer|panelist)\b", s, re.I):
            return "out of role"  # a speaker label of its own ("**Marcus Oyelaran (GTM lead):** Hi")
        for m in _LABEL.finditer(s):
            if others & {w.lower().strip(".") for w in m.group(1).split()}:
                return "speaks as someone else"
        for name, role in t.colleagues:
            first = re.escape(name.replace("Dr. ", "").split()[0])
            last = re.escape(name.split()[-1])
            if re.search(rf"\b(?:i'?m|i am|my name is|this is|it'?s)\s+(?:dr\.?\s+)?(?:{first}|{last})\b|"
                         rf"^\W*(?:dr\.?\s+)?(?:{first}|{last})(?:\s+\w+)?\s+here\b", s, re.I):
                return "speaks as a colleague"
            if t.kind not in ("contradict", "note") and re.search(
                    rf"\b(?:{first}|{last})(?:'s)? (?:says|said|thinks|thought|tells|told|mentioned|believes|feels|wants|"
                    rf"wanted|asked|reckons|claims|keeps saying|would say|would tell|'d say|will say)\b|"
                    rf"^\W*(?:{first}|{last}),\s(?![A-Z][a-z]+(?:,| and)|and\b)", s):
                return "speaks for a colleague"
            if re.search(rf"\b(?:{first}|{last}) (?:will|would|is going to|wants to) (?:want|ask|say|push|need|tell)\b|"
                         rf"\b(?:{first}|{last}) (?:asked|wanted|told|wants|needs) me to (?:add|say|tell|pass|mention|relay|"
                         rf"remind|ask)\b|\bpassing on (?:a|something) from "
                         rf"(?:dr\.?\s+)?(?:{first}|{last})\b|"
                         rf"\bhand (?:this|it|you|things) (?:over )?to (?:dr\.?\s+)?(?:{first}|{last})\b", s, re.I):
                return "speaks for a colleague"
            words = _role_words(role) - _role_words(t.role)
            named = "|".join(map(re.escape, sorted(words)))
            domain = "|".join(_DOMAIN[k] for k in _DOMAIN if k in role.lower()) or named
            if words and re.search(rf"\b(?:speaking (?:for|as)|as|wearing my)\s+(?:the|a|your|our)\s+(?:\w+\s+)?"
                                   rf"(?:{named})\b|\bspeaking (?:for|as) (?:{named}|{domain})\b", s, re.I):
                return "speaks as a colleague"
        stated = [c for c in re.split(r"\s[—–-]\s|;\s|:\s", s) if "?" not in c]  # its statements
        if (not is_q and _AS_CANDIDATE.search(s)) or any(_PROPOSES.search(c) for c in stated):
            return "answers its own question"
        if _TELLS.search(s) or (not is_q and "?" not in s and _HINT.search(s) and t.kind != "note"):
            return "gives the answer away"
        if t.kind == "follow_up" and _NEW_TOPIC.search(s):
            return "off the question"
        written = any(_flat(s) in _flat(o) for o in t.own)  # a sentence of the written question may echo its framing
        if before.strip() and not written and (quoted_run(s, ngrams([before], 6), 6) or _flat(s) in _flat(before)):
            return "repeats itself"
        seq = [_norm(w) for w in s.split()]
        if len({tuple(seq[i:i + 5]) for i in range(len(seq) - 4)}) < len(seq) - 4:
            return "repeats itself"
        if t.kind == "note":
            if re.search(r"\basked:|\banswered:", s, re.I):
                return "repeats the record"
            return "recites the grader's scores" if _SCORE.search(s) else ""
        if _GRADE.search(s):
            return "grades the answer aloud"
        if t.kind == "close":
            if is_q or "?" in s:
                return "asks in a goodbye"
            if _DECISION.search(s):
                return "announces a decision"
        return ""

    def _meaning(self, s: str, before: str, is_q: bool, scores: dict[str, float]) -> str:
        t = self.turn
        if self.embedder is None:
            return "" if not is_q or t.kind == "close" or self._lexically_on(s) else "off the question"
        probe = [s] if not before.strip() else [s, (before.strip().split("\n")[-1] + " " + s).strip()]
        aside = _ASIDE.search(s) if is_q else None  # embedded with the sentence, in one call
        vecs = self.embedder.embed([*probe, *([aside.group(1) or aside.group(2)] if aside else [])])
        v = vecs[:len(probe)]
        topic = float((self._vec["topic"] @ v.T).max()) if len(self._vec["topic"]) else 1.0
        own_topic = float((self._vec["topic"] @ v[0]).max()) if len(self._vec["topic"]) else 1.0
        question = self._vec["topic"][t.frame:t.frame + 2]
        said = float((question @ v.T).max()) if len(question) else own_topic  # how close to the question itself
        scores.update(topic=topic, own_topic=own_topic)
        if len(self._vec["secrets"]):
            secret = scores["secret"] = float((self._vec["secrets"] @ v[0]).max())
            # a question about the turn's topic may come near a priority ("what do you give sales?"); a
            # statement near one says it
            on_topic = max(topic, own_topic) >= secret + SECRET_MARGIN and secret < SECRET_HARD
            if (secret >= SECRET and not on_topic) or (secret >= SECRET_INTENT and _INTENT.search(s)):
                return "says a hidden priority aloud"
        if len(self._vec["verdicts"]) and not is_q:
            scores["verdict"] = float((self._vec["verdicts"] @ v[0]).max())
            if scores["verdict"] >= VERDICT:
                return "grades the answer aloud"
        if len(self._vec["answers"]) and t.kind != "close":
            ans = scores["answer"] = float((self._vec["answers"] @ v[0]).max())
            leading = is_q and bool(_LEADING.search(s))
            if (not is_q or leading) and len(s.split()) >= 8 and ans >= (LEADING_ANSWER if leading else ANSWER) and \
                    (leading or ans > said + ANSWER_MARGIN):
                return "gives the answer away"
            if is_q and len(s.split()) >= 8 and _YES_NO.search(s) and ans >= LEADING_ANSWER and ans > said:
                return "gives the answer away"
            if aside:
                va = vecs[-1]
                scores["aside"] = float((self._vec["answers"] @ va).max())
                near_question = float((question @ va).max()) if len(question) else 0.0
                if scores["aside"] >= LEADING_ANSWER and scores["aside"] > near_question:
                    return "gives the answer away"
        if is_q and t.kind not in ("close", "note") and len(s.split()) > 5:  # "And the timeline?" leads on
            floor = {"follow_up": ON_TOPIC_FOLLOW_UP, "ask": ON_TOPIC}.get(t.kind, ON_TOPIC_CONTRADICT)
            if topic < floor and not self._lexically_on(s + " " + before):
                return "off the question"
            deferred = DEFERRED if t.kind == "ask" else DEFERRED_FOLLOW_UP
            if t.kind in ("ask", "follow_up") and topic < deferred and (
                    _DEFER.search(s) or _DEFER.search(before.strip().split("\n")[-1])):
                return "off the question"  # "Let's do pricing in a minute. First, ...": another question first
        return ""

    def _lexically_on(self, text: str) -> bool:
        want = self._topic_stems
        return not want or len(want & stems(text)) >= ON_TOPIC_WORDS * len(want)


_CACHE: dict[tuple[str, str], np.ndarray] = {}
_CACHE_MAX = 4096


def _vectors(embedder: Embedder, texts: list[str]) -> np.ndarray:
    name = getattr(embedder, "name", type(embedder).__name__)
    todo = [t for t in dict.fromkeys(texts) if (name, t) not in _CACHE]
    if todo:
        if len(_CACHE) + len(todo) > _CACHE_MAX:
            _CACHE.clear()
        for t, v in zip(todo, embedder.embed(todo), strict=True):
            _CACHE[(name, t)] = v
    if not texts:
        return np.zeros((0, 384), dtype=np.float32)
    return np.stack([_CACHE[(name, t)] for t in texts])


_ROLE_WORDS = {"research": {"researcher", "research scientist", "scientist"},
               "go-to-market": {"go-to-market lead", "gtm lead", "sales lead", "head of sales", "go-to-market"},
               "product manager": {"product manager", "pm", "product lead"}}
_DOMAIN = {"research": "research", "go-to-market": "sales|go-to-market|gtm", "product manager": "product|engineering"}


def _role_words(role: str) -> set[str]:
    """The ways a role is named ("as the researcher", "speaking for sales")."""
    r = role.lower()
    return {w for key, words in _ROLE_WORDS.items() if key in r for w in words} or {r.split(",")[0]}
