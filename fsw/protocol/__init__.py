"""The interface control document in code: CCSDS space packets, PUS-C, CUC time, CRC and framing.

Pure code: no I/O, no threads, no clock.  ``ground`` and ``hw_sim`` use it too.
"""

from .crc import USING_C_EXTENSION, append_crc, check_crc, crc16
from .errors import BytesTooShortError, DecodeError, LocalProtocolError, ProtocolError
from .framing import ASM, Deframer, DropReason, Dropped, frame
from .pus import (
    MIN_TC_LEN, MIN_TM_LEN, TC_HEADER_LEN, TM_HEADER_LEN, PusTc, PusTm,
    parse_packet, parse_packet_nothrow, split_request_id,
)
from .spacepacket import (
    IDLE_APID, MAX_APID, MAX_SEQ_COUNT, PRIMARY_HEADER_LEN, PacketType, PrimaryHeader, SeqFlags,
)
from .timecode import CUC_LEN, P_FIELD, CucTime, MissionEpoch

__all__ = [
    "ASM", "BytesTooShortError", "CUC_LEN", "CucTime", "DecodeError", "Deframer", "DropReason", "Dropped",
    "IDLE_APID", "LocalProtocolError", "MAX_APID", "MAX_SEQ_COUNT", "MIN_TC_LEN", "MIN_TM_LEN", "MissionEpoch",
    "PRIMARY_HEADER_LEN", "P_FIELD", "PacketType", "PrimaryHeader", "ProtocolError", "PusTc", "PusTm",
    "SeqFlags", "TC_HEADER_LEN", "TM_HEADER_LEN", "USING_C_EXTENSION", "append_crc", "check_crc", "crc16",
    "frame", "parse_packet", "parse_packet_nothrow", "split_request_id",
]
