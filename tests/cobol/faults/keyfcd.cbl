      * KEYFCD: calls ESFH directly with a file control block (FCD) it
      * builds itself, as programs written for Micro Focus's file
      * handler interface do, and opens an INDEXED file of 20-byte
      * records whose key lies partly or wholly outside the record.
      * ESFH must refuse each of those OPENs with status 39, as it must
      * a key definition block that claims more than its length holds;
      * the key inside the record opens and takes a record.
       IDENTIFICATION DIVISION.
       PROGRAM-ID. KEYFCD.
       DATA DIVISION.
       WORKING-STORAGE SECTION.
      * FCD3, 216 bytes: libcob's common.h gives the offsets.
       01  FCD.
           05  FCD-STATUS           PIC X(2).
           05  FCD-LENGTH           PIC X(2) VALUE X"00D8".
           05  FCD-VERSION          PIC X VALUE X"01".
      *    INDEXED, ACCESS DYNAMIC, not open
           05  FCD-ORGANIZATION     PIC X VALUE X"02".
           05  FCD-ACCESS-MODE      PIC X VALUE X"08".
           05  FCD-OPEN-MODE        PIC X VALUE X"80".
           05  FILLER               PIC X(46) VALUE LOW-VALUES.
           05  FCD-NAME-LENGTH      PIC X(2) VALUE X"0007".
           05  FILLER               PIC X(32) VALUE LOW-VALUES.
           05  FCD-CURRENT-LENGTH   PIC X(4) VALUE X"00000014".
           05  FCD-MIN-LENGTH       PIC X(4) VALUE X"00000014".
           05  FCD-MAX-LENGTH       PIC X(4) VALUE X"00000014".
           05  FILLER               PIC X(52) VALUE LOW-VALUES.
           05  FCD-HANDLE           USAGE POINTER VALUE NULL.
           05  FCD-RECORD           USAGE POINTER VALUE NULL.
           05  FCD-NAME             USAGE POINTER VALUE NULL.
           05  FCD-INDEX-NAME       USAGE POINTER VALUE NULL.
           05  FCD-KEYS             USAGE POINTER VALUE NULL.
           05  FILLER               PIC X(24) VALUE LOW-VALUES.
      * The key definition block: one key of one component.
       01  KDB.
           05  KDB-LENGTH           PIC X(2) VALUE X"0028".
           05  FILLER               PIC X(4) VALUE LOW-VALUES.
           05  KDB-KEYS             PIC X(2) VALUE X"0001".
           05  FILLER               PIC X(6) VALUE LOW-VALUES.
           05  KEY-COMPONENTS       PIC X(2) VALUE X"0001".
           05  KEY-COMPONENT-AT     PIC X(2) VALUE X"001E".
           05  KEY-FLAGS            PIC X VALUE X"10".
           05  FILLER               PIC X(11) VALUE LOW-VALUES.
           05  COMPONENT-TYPE       PIC X(2) VALUE LOW-VALUES.
           05  COMPONENT-OFFSET     PIC X(4).
           05  COMPONENT-LENGTH     PIC X(4).
       01  FILE-NAME                PIC X(7) VALUE "KEYFILE".
       01  REC                      PIC X(20).
       01  OPEN-OUTPUT              PIC X(2) VALUE X"FA01".
       01  WRITE-RECORD             PIC X(2) VALUE X"FAF3".
       01  CLOSE-FILE               PIC X(2) VALUE X"FA80".
       01  CASE-NAME                PIC X(24).
       PROCEDURE DIVISION.
           SET FCD-RECORD TO ADDRESS OF REC
           SET FCD-NAME TO ADDRESS OF FILE-NAME
           SET FCD-KEYS TO ADDRESS OF KDB
           MOVE "key past the record end" TO CASE-NAME
           MOVE X"00000010" TO COMPONENT-OFFSET
           MOVE X"00000008" TO COMPONENT-LENGTH
           PERFORM OPEN-THE-FILE
           MOVE "key at 2 GiB" TO CASE-NAME
           MOVE X"80000000" TO COMPONENT-OFFSET
           PERFORM OPEN-THE-FILE
           MOVE "key wrapping around" TO CASE-NAME
           MOVE X"FFFFFFF8" TO COMPONENT-OFFSET
           MOVE X"00000010" TO COMPONENT-LENGTH
           PERFORM OPEN-THE-FILE
           MOVE "key of no bytes" TO CASE-NAME
           MOVE X"00000000" TO COMPONENT-OFFSET
           MOVE X"00000000" TO COMPONENT-LENGTH
           PERFORM OPEN-THE-FILE
           MOVE X"0000000C" TO COMPONENT-OFFSET
           MOVE X"00000008" TO COMPONENT-LENGTH
           MOVE "block shorter than a key" TO CASE-NAME
           MOVE X"0010" TO KDB-LENGTH
           PERFORM OPEN-THE-FILE
           MOVE "component past the block" TO CASE-NAME
           MOVE X"0028" TO KDB-LENGTH
           MOVE X"0020" TO KEY-COMPONENT-AT
           PERFORM OPEN-THE-FILE
           MOVE "key in the record" TO CASE-NAME
           MOVE X"001E" TO KEY-COMPONENT-AT
           PERFORM OPEN-THE-FILE
           MOVE "first record KEY0001" TO REC
           CALL "ESFH" USING WRITE-RECORD FCD
           DISPLAY "write " FCD-STATUS
           CALL "ESFH" USING CLOSE-FILE FCD
           DISPLAY "close " FCD-STATUS
           STOP RUN.
       OPEN-THE-FILE.
           CALL "ESFH" USING OPEN-OUTPUT FCD
           DISPLAY "open, " FUNCTION TRIM(CASE-NAME) ": " FCD-STATUS.
