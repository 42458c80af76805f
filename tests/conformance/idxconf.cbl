      *> Conformance: every INDEXED operation and status, printed.
      *> Conformance: every INDEXED operation and status, printed.
      *> Run plain (GnuCOBOL BDB) and with ESFH: same output.
       PROGRAM-ID. IDXCONF.
       ENVIRONMENT DIVISION.
       INPUT-OUTPUT SECTION.
       FILE-CONTROL.
           SELECT IDX ASSIGN TO "IDXFILE"
               ORGANIZATION INDEXED ACCESS DYNAMIC
               RECORD KEY IDX-KEY
               ALTERNATE RECORD KEY IDX-NAME
               ALTERNATE RECORD KEY IDX-CITY WITH DUPLICATES
               FILE STATUS FS.
           SELECT OPTIONAL OPT ASSIGN TO "OPTFILE"
               ORGANIZATION INDEXED ACCESS DYNAMIC
               RECORD KEY OPT-KEY
               FILE STATUS FS.
           SELECT MISS ASSIGN TO "MISSFILE"
               ORGANIZATION INDEXED ACCESS DYNAMIC
               RECORD KEY MISS-KEY
               FILE STATUS FS.
           SELECT SEQF ASSIGN TO "IDXFILE"
               ORGANIZATION INDEXED ACCESS SEQUENTIAL
               RECORD KEY SEQ-KEY
               ALTERNATE RECORD KEY SEQ-NAME
               ALTERNATE RECORD KEY SEQ-CITY WITH DUPLICATES
               FILE STATUS FS.
           SELECT SPLT ASSIGN TO "SPLTFILE"
               ORGANIZATION INDEXED ACCESS DYNAMIC
               RECORD KEY SPLT-KEY = SPLT-B SPLT-A
               FILE STATUS FS.
       DATA DIVISION.
       FILE SECTION.
       FD IDX.
       01 IDX-REC.
          05 IDX-KEY.
             10 IDX-KEY-PFX PIC X(2).
             10 IDX-KEY-NUM PIC X(3).
          05 IDX-NAME PIC X(8).
          05 IDX-CITY PIC X(6).
          05 IDX-AMT  PIC 9(4).
       FD OPT.
       01 OPT-REC.
          05 OPT-KEY PIC X(4).
          05 OPT-DATA PIC X(6).
       FD MISS.
       01 MISS-REC.
          05 MISS-KEY PIC X(4).
       FD SEQF.
       01 SEQ-REC.
          05 SEQ-KEY PIC X(5).
          05 SEQ-NAME PIC X(8).
          05 SEQ-CITY PIC X(6).
          05 SEQ-AMT  PIC 9(4).
       FD SPLT.
       01 SPLT-REC.
          05 SPLT-A PIC X(3).
          05 SPLT-B PIC X(3).
          05 SPLT-D PIC X(4).
       WORKING-STORAGE SECTION.
       01 FS PIC XX.
       01 I PIC 99.
       PROCEDURE DIVISION.
       MAIN.
           DISPLAY "-- open missing"
           OPEN INPUT MISS  DISPLAY "open input missing " FS
           OPEN I-O MISS    DISPLAY "open i-o missing " FS
           OPEN EXTEND MISS DISPLAY "open extend missing " FS
           CLOSE MISS       DISPLAY "close not open " FS
           OPEN INPUT OPT   DISPLAY "open input optional " FS
           READ OPT NEXT    DISPLAY "read next optional " FS
           READ OPT NEXT    DISPLAY "read next optional again " FS
           CLOSE OPT        DISPLAY "close optional " FS
           OPEN I-O OPT     DISPLAY "open i-o optional " FS
           CLOSE OPT        DISPLAY "close " FS

           DISPLAY "-- load"
           OPEN OUTPUT IDX  DISPLAY "open output " FS
           OPEN OUTPUT IDX  DISPLAY "open again " FS
           READ IDX NEXT    DISPLAY "read on output " FS
           MOVE "AA001ALICE   PARIS 0010" TO IDX-REC PERFORM W
           MOVE "AA003CAROL   LONDON0030" TO IDX-REC PERFORM W
           MOVE "AA002BOB     PARIS 0020" TO IDX-REC PERFORM W
           MOVE "BB001DAVE    ROME  0040" TO IDX-REC PERFORM W
           MOVE "AB005ERIN    PARIS 0050" TO IDX-REC PERFORM W
           MOVE "AA002BOBBY   OSLO  0021" TO IDX-REC PERFORM W
           MOVE "AA009ALICE   OSLO  0090" TO IDX-REC PERFORM W
           MOVE "AA007FRANK   LONDON0070" TO IDX-REC PERFORM W
           CLOSE IDX        DISPLAY "close " FS

           DISPLAY "-- sequential by prime key"
           OPEN INPUT IDX   DISPLAY "open input " FS
           READ IDX PREVIOUS DISPLAY "read prev at start " FS
           PERFORM RN 8 TIMES
           READ IDX NEXT    DISPLAY "read next after eof " FS
           READ IDX PREVIOUS DISPLAY "read prev after eof " FS
                            DISPLAY "  " IDX-REC
           WRITE IDX-REC    DISPLAY "write on input " FS
           REWRITE IDX-REC  DISPLAY "rewrite on input " FS
           DELETE IDX       DISPLAY "delete on input " FS
           CLOSE IDX

           DISPLAY "-- random reads"
           OPEN I-O IDX     DISPLAY "open i-o " FS
           MOVE "AA003" TO IDX-KEY
           READ IDX         DISPLAY "read AA003 " FS " " IDX-REC
           MOVE "ZZ999" TO IDX-KEY
           READ IDX         DISPLAY "read ZZ999 " FS
           MOVE "DAVE" TO IDX-NAME
           READ IDX KEY IS IDX-NAME
                            DISPLAY "read name DAVE " FS " " IDX-REC
           MOVE "NOBODY" TO IDX-NAME
           READ IDX KEY IS IDX-NAME DISPLAY "read name NOBODY " FS
           MOVE "PARIS" TO IDX-CITY
           READ IDX KEY IS IDX-CITY
                            DISPLAY "read city PARIS " FS " " IDX-REC
           READ IDX NEXT    DISPLAY "next by city " FS " " IDX-REC
           READ IDX NEXT    DISPLAY "next by city " FS " " IDX-REC
           READ IDX NEXT    DISPLAY "next by city " FS " " IDX-REC
           READ IDX PREVIOUS DISPLAY "prev by city " FS " " IDX-REC

           DISPLAY "-- starts"
           MOVE "AA004" TO IDX-KEY
           START IDX KEY IS >= IDX-KEY DISPLAY "start >= AA004 " FS
           PERFORM RN 2 TIMES
           MOVE "AA003" TO IDX-KEY
           START IDX KEY IS > IDX-KEY DISPLAY "start > AA003 " FS
           PERFORM RN
           MOVE "AA003" TO IDX-KEY
           START IDX KEY IS < IDX-KEY DISPLAY "start < AA003 " FS
           PERFORM RN
           MOVE "AA003" TO IDX-KEY
           START IDX KEY IS <= IDX-KEY DISPLAY "start <= AA003 " FS
           PERFORM RP 2 TIMES
           MOVE "AA004" TO IDX-KEY
           START IDX KEY IS = IDX-KEY DISPLAY "start = AA004 " FS
           READ IDX NEXT    DISPLAY "read next after bad start " FS
           MOVE "ZZ000" TO IDX-KEY
           START IDX KEY IS > IDX-KEY DISPLAY "start > ZZ000 " FS
           MOVE "AB" TO IDX-KEY-PFX
           START IDX KEY IS = IDX-KEY-PFX
                            DISPLAY "start = AB partial " FS
           PERFORM RN
           MOVE "AA" TO IDX-KEY-PFX
           START IDX KEY IS > IDX-KEY-PFX
                            DISPLAY "start > AA partial " FS
           PERFORM RN
           MOVE "AB" TO IDX-KEY-PFX
           START IDX KEY IS < IDX-KEY-PFX
                            DISPLAY "start < AB partial " FS
           PERFORM RN
           MOVE "OSLO" TO IDX-CITY
           START IDX KEY IS = IDX-CITY DISPLAY "start city = OSLO " FS
           PERFORM RN 3 TIMES
           MOVE "PARIS" TO IDX-CITY
           START IDX KEY IS <= IDX-CITY
                            DISPLAY "start city <= PARIS " FS
           PERFORM RP 3 TIMES
           MOVE "M" TO IDX-NAME
           START IDX KEY IS >= IDX-NAME DISPLAY "start name >= M " FS
           PERFORM RN 2 TIMES
           MOVE "CAROL" TO IDX-NAME
           START IDX KEY IS < IDX-NAME DISPLAY "start name < CAROL " FS
           PERFORM RP 4 TIMES

           DISPLAY "-- updates"
           MOVE "AA001ALICE   PARIS 0010" TO IDX-REC
           WRITE IDX-REC    DISPLAY "write dup prime " FS
           MOVE "CC001ALICE   PARIS 0010" TO IDX-REC
           WRITE IDX-REC    DISPLAY "write dup name " FS
           MOVE "CC001GREG    PARIS 0011" TO IDX-REC
           WRITE IDX-REC    DISPLAY "write dup city " FS
           MOVE "CC002HANK    NICE  0012" TO IDX-REC
           WRITE IDX-REC    DISPLAY "write new city " FS
           MOVE "AA002BOBBY   ROME  0099" TO IDX-REC
           REWRITE IDX-REC  DISPLAY "rewrite AA002 city " FS
           MOVE "AA003CAROL2  LONDON0031" TO IDX-REC
           REWRITE IDX-REC  DISPLAY "rewrite AA003 name " FS
           MOVE "AA003DAVE    LONDON0031" TO IDX-REC
           REWRITE IDX-REC  DISPLAY "rewrite AA003 dup name " FS
           MOVE "QQ003DAVE    LONDON0031" TO IDX-REC
           REWRITE IDX-REC  DISPLAY "rewrite missing " FS
           MOVE "AA009" TO IDX-KEY
           DELETE IDX       DISPLAY "delete AA009 " FS
           DELETE IDX       DISPLAY "delete AA009 again " FS
           UNLOCK IDX       DISPLAY "unlock " FS
           CLOSE IDX        DISPLAY "close " FS
           READ IDX NEXT    DISPLAY "read closed " FS
           WRITE IDX-REC    DISPLAY "write closed " FS
           DELETE IDX       DISPLAY "delete closed " FS

           DISPLAY "-- by city after updates"
           OPEN INPUT IDX
           MOVE LOW-VALUES TO IDX-CITY
           START IDX KEY IS >= IDX-CITY DISPLAY "start city low " FS
           PERFORM RN 10 TIMES
           MOVE HIGH-VALUES TO IDX-NAME
           START IDX KEY IS <= IDX-NAME DISPLAY "start name high " FS
           PERFORM RP 10 TIMES
           CLOSE IDX

           DISPLAY "-- sequential access"
           OPEN I-O SEQF    DISPLAY "open seq i-o " FS
           REWRITE SEQ-REC  DISPLAY "rewrite without read " FS
           DELETE SEQF      DISPLAY "delete without read " FS
           READ SEQF NEXT   DISPLAY "read " FS " " SEQ-REC
           READ SEQF NEXT   DISPLAY "read " FS " " SEQ-REC
           DELETE SEQF      DISPLAY "delete after read " FS
           READ SEQF NEXT   DISPLAY "read " FS " " SEQ-REC
           CLOSE SEQF
           OPEN EXTEND SEQF DISPLAY "open extend " FS
           MOVE "ZZ001ZED     BERN  0001" TO SEQ-REC
           WRITE SEQ-REC    DISPLAY "extend write " FS
           MOVE "ZZ000ZOE     BERN  0002" TO SEQ-REC
           WRITE SEQ-REC    DISPLAY "extend write lower " FS
           CLOSE SEQF
           OPEN OUTPUT SEQF DISPLAY "open output seq " FS
           MOVE "AA005ZED     BERN  0001" TO SEQ-REC
           WRITE SEQ-REC    DISPLAY "write " FS
           MOVE "AA004ZOE     BERN  0002" TO SEQ-REC
           WRITE SEQ-REC    DISPLAY "write lower " FS
           MOVE "AA005ZOE     BERN  0002" TO SEQ-REC
           WRITE SEQ-REC    DISPLAY "write same " FS
           MOVE "AA006ZED     BERN  0002" TO SEQ-REC
           WRITE SEQ-REC    DISPLAY "write dup name " FS
           CLOSE SEQF
           OPEN INPUT SEQF
           PERFORM 3 TIMES
              READ SEQF NEXT DISPLAY "read " FS " " SEQ-REC
           END-PERFORM
           CLOSE SEQF

           DISPLAY "-- split key"
           OPEN OUTPUT SPLT DISPLAY "open split " FS
           MOVE "AAAZZZ0001" TO SPLT-REC WRITE SPLT-REC DISPLAY FS
           MOVE "ZZZAAA0002" TO SPLT-REC WRITE SPLT-REC DISPLAY FS
           MOVE "MMMMMM0003" TO SPLT-REC WRITE SPLT-REC DISPLAY FS
           MOVE "AAAZZZ0004" TO SPLT-REC WRITE SPLT-REC DISPLAY FS
           CLOSE SPLT
           OPEN INPUT SPLT
           PERFORM 4 TIMES
              READ SPLT NEXT DISPLAY "split " FS " " SPLT-REC
           END-PERFORM
           MOVE "MMMMMM" TO SPLT-REC
           READ SPLT KEY IS SPLT-KEY
                            DISPLAY "split read " FS " " SPLT-REC
           CLOSE SPLT
           STOP RUN.
       W.
           WRITE IDX-REC DISPLAY "write " IDX-KEY " " FS.
       RN.
           READ IDX NEXT
           IF FS < "10" DISPLAY "next " FS " " IDX-REC
           ELSE DISPLAY "next " FS END-IF.
       RP.
           READ IDX PREVIOUS
           IF FS < "10" DISPLAY "prev " FS " " IDX-REC
           ELSE DISPLAY "prev " FS END-IF.

